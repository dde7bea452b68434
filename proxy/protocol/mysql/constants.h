// MySQL/MariaDB protocol constants: capability flags, server status flags,
// command bytes, column types and flags, session-track types, and the error
// codes the proxy itself sends, each with its SQLSTATE.
//
// Names follow the MySQL/MariaDB headers with a k prefix in CamelCase
// (CLIENT_PROTOCOL_41 -> kClientProtocol41). The plain names are macros in
// mysql.h / mysqld_error.h, which the control plane includes through
// libmysqlclient; reusing them here would break any file that sees both.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardgate::mysql {

// ---------------------------------------------------------------- capabilities
// Lower 32 bits, shared by MySQL and MariaDB.
inline constexpr std::uint32_t kClientLongPassword = 1u << 0;  // MariaDB: CLIENT_MYSQL
inline constexpr std::uint32_t kClientFoundRows = 1u << 1;
inline constexpr std::uint32_t kClientLongFlag = 1u << 2;
inline constexpr std::uint32_t kClientConnectWithDb = 1u << 3;
inline constexpr std::uint32_t kClientNoSchema = 1u << 4;
inline constexpr std::uint32_t kClientCompress = 1u << 5;
inline constexpr std::uint32_t kClientOdbc = 1u << 6;
inline constexpr std::uint32_t kClientLocalFiles = 1u << 7;
inline constexpr std::uint32_t kClientIgnoreSpace = 1u << 8;
inline constexpr std::uint32_t kClientProtocol41 = 1u << 9;
inline constexpr std::uint32_t kClientInteractive = 1u << 10;
inline constexpr std::uint32_t kClientSsl = 1u << 11;
inline constexpr std::uint32_t kClientIgnoreSigpipe = 1u << 12;
inline constexpr std::uint32_t kClientTransactions = 1u << 13;
inline constexpr std::uint32_t kClientReserved = 1u << 14;
inline constexpr std::uint32_t kClientSecureConnection = 1u << 15;
inline constexpr std::uint32_t kClientMultiStatements = 1u << 16;
inline constexpr std::uint32_t kClientMultiResults = 1u << 17;
inline constexpr std::uint32_t kClientPsMultiResults = 1u << 18;
inline constexpr std::uint32_t kClientPluginAuth = 1u << 19;
inline constexpr std::uint32_t kClientConnectAttrs = 1u << 20;
inline constexpr std::uint32_t kClientPluginAuthLenencClientData = 1u << 21;
inline constexpr std::uint32_t kClientCanHandleExpiredPasswords = 1u << 22;
inline constexpr std::uint32_t kClientSessionTrack = 1u << 23;
inline constexpr std::uint32_t kClientDeprecateEof = 1u << 24;  // MySQL 5.7.5+; not MariaDB
inline constexpr std::uint32_t kClientOptionalResultsetMetadata = 1u << 25;  // MySQL 8
inline constexpr std::uint32_t kClientZstdCompression = 1u << 26;
inline constexpr std::uint32_t kClientQueryAttributes = 1u << 27;  // MySQL 8.0.23+
inline constexpr std::uint32_t kClientProgressObsolete = 1u << 29;
inline constexpr std::uint32_t kClientSslVerifyServerCert = 1u << 30;
inline constexpr std::uint32_t kClientRememberOptions = 1u << 31;

// MariaDB calls bit 0 CLIENT_MYSQL: a MariaDB server clears it in its greeting,
// and then both sides carry extended capabilities (below, numbered from bit 0
// here, bit 32 in MariaDB's 64-bit flags) in otherwise reserved bytes.
inline constexpr std::uint32_t kClientMysql = kClientLongPassword;
inline constexpr std::uint32_t kMariadbClientProgress = 1u << 0;
inline constexpr std::uint32_t kMariadbClientComMulti = 1u << 1;  // obsolete
inline constexpr std::uint32_t kMariadbClientStmtBulkOperations = 1u << 2;
inline constexpr std::uint32_t kMariadbClientExtendedMetadata = 1u << 3;
inline constexpr std::uint32_t kMariadbClientCacheMetadata = 1u << 4;

// ---------------------------------------------------------------- server status
inline constexpr std::uint16_t kServerStatusInTrans = 1u << 0;
inline constexpr std::uint16_t kServerStatusAutocommit = 1u << 1;
inline constexpr std::uint16_t kServerMoreResultsExists = 1u << 3;
inline constexpr std::uint16_t kServerQueryNoGoodIndexUsed = 1u << 4;
inline constexpr std::uint16_t kServerQueryNoIndexUsed = 1u << 5;
inline constexpr std::uint16_t kServerStatusCursorExists = 1u << 6;
inline constexpr std::uint16_t kServerStatusLastRowSent = 1u << 7;
inline constexpr std::uint16_t kServerStatusDbDropped = 1u << 8;
inline constexpr std::uint16_t kServerStatusNoBackslashEscapes = 1u << 9;
inline constexpr std::uint16_t kServerStatusMetadataChanged = 1u << 10;
inline constexpr std::uint16_t kServerQueryWasSlow = 1u << 11;
inline constexpr std::uint16_t kServerPsOutParams = 1u << 12;
inline constexpr std::uint16_t kServerStatusInTransReadonly = 1u << 13;
inline constexpr std::uint16_t kServerSessionStateChanged = 1u << 14;
inline constexpr std::uint16_t kServerStatusAnsiQuotes = 1u << 15;  // MariaDB

// ---------------------------------------------------------------- commands
// First byte of every client command payload.
inline constexpr std::uint8_t kComSleep = 0x00;
inline constexpr std::uint8_t kComQuit = 0x01;
inline constexpr std::uint8_t kComInitDb = 0x02;
inline constexpr std::uint8_t kComQuery = 0x03;
inline constexpr std::uint8_t kComFieldList = 0x04;
inline constexpr std::uint8_t kComCreateDb = 0x05;
inline constexpr std::uint8_t kComDropDb = 0x06;
inline constexpr std::uint8_t kComRefresh = 0x07;
inline constexpr std::uint8_t kComShutdown = 0x08;
inline constexpr std::uint8_t kComStatistics = 0x09;
inline constexpr std::uint8_t kComProcessInfo = 0x0A;
inline constexpr std::uint8_t kComConnect = 0x0B;
inline constexpr std::uint8_t kComProcessKill = 0x0C;
inline constexpr std::uint8_t kComDebug = 0x0D;
inline constexpr std::uint8_t kComPing = 0x0E;
inline constexpr std::uint8_t kComTime = 0x0F;
inline constexpr std::uint8_t kComDelayedInsert = 0x10;
inline constexpr std::uint8_t kComChangeUser = 0x11;
inline constexpr std::uint8_t kComBinlogDump = 0x12;
inline constexpr std::uint8_t kComTableDump = 0x13;
inline constexpr std::uint8_t kComConnectOut = 0x14;
inline constexpr std::uint8_t kComRegisterSlave = 0x15;
inline constexpr std::uint8_t kComStmtPrepare = 0x16;
inline constexpr std::uint8_t kComStmtExecute = 0x17;
inline constexpr std::uint8_t kComStmtSendLongData = 0x18;
inline constexpr std::uint8_t kComStmtClose = 0x19;
inline constexpr std::uint8_t kComStmtReset = 0x1A;
inline constexpr std::uint8_t kComSetOption = 0x1B;
inline constexpr std::uint8_t kComStmtFetch = 0x1C;
inline constexpr std::uint8_t kComDaemon = 0x1D;
inline constexpr std::uint8_t kComBinlogDumpGtid = 0x1E;
inline constexpr std::uint8_t kComResetConnection = 0x1F;
inline constexpr std::uint8_t kComStmtBulkExecute = 0xFA;  // MariaDB

// COM_SET_OPTION argument (uint16).
inline constexpr std::uint16_t kMysqlOptionMultiStatementsOn = 0;
inline constexpr std::uint16_t kMysqlOptionMultiStatementsOff = 1;

// ---------------------------------------------------------------- column types
inline constexpr std::uint8_t kTypeDecimal = 0x00;
inline constexpr std::uint8_t kTypeTiny = 0x01;
inline constexpr std::uint8_t kTypeShort = 0x02;
inline constexpr std::uint8_t kTypeLong = 0x03;
inline constexpr std::uint8_t kTypeFloat = 0x04;
inline constexpr std::uint8_t kTypeDouble = 0x05;
inline constexpr std::uint8_t kTypeNull = 0x06;
inline constexpr std::uint8_t kTypeTimestamp = 0x07;
inline constexpr std::uint8_t kTypeLongLong = 0x08;
inline constexpr std::uint8_t kTypeInt24 = 0x09;
inline constexpr std::uint8_t kTypeDate = 0x0A;
inline constexpr std::uint8_t kTypeTime = 0x0B;
inline constexpr std::uint8_t kTypeDateTime = 0x0C;
inline constexpr std::uint8_t kTypeYear = 0x0D;
inline constexpr std::uint8_t kTypeNewDate = 0x0E;
inline constexpr std::uint8_t kTypeVarchar = 0x0F;
inline constexpr std::uint8_t kTypeBit = 0x10;
inline constexpr std::uint8_t kTypeTimestamp2 = 0x11;
inline constexpr std::uint8_t kTypeDateTime2 = 0x12;
inline constexpr std::uint8_t kTypeTime2 = 0x13;
inline constexpr std::uint8_t kTypeJson = 0xF5;  // MySQL; MariaDB sends JSON as a blob
inline constexpr std::uint8_t kTypeNewDecimal = 0xF6;
inline constexpr std::uint8_t kTypeEnum = 0xF7;
inline constexpr std::uint8_t kTypeSet = 0xF8;
inline constexpr std::uint8_t kTypeTinyBlob = 0xF9;
inline constexpr std::uint8_t kTypeMediumBlob = 0xFA;
inline constexpr std::uint8_t kTypeLongBlob = 0xFB;
inline constexpr std::uint8_t kTypeBlob = 0xFC;
inline constexpr std::uint8_t kTypeVarString = 0xFD;
inline constexpr std::uint8_t kTypeString = 0xFE;
inline constexpr std::uint8_t kTypeGeometry = 0xFF;

// ---------------------------------------------------------------- column flags
inline constexpr std::uint16_t kFlagNotNull = 1u << 0;
inline constexpr std::uint16_t kFlagPriKey = 1u << 1;
inline constexpr std::uint16_t kFlagUniqueKey = 1u << 2;
inline constexpr std::uint16_t kFlagMultipleKey = 1u << 3;
inline constexpr std::uint16_t kFlagBlob = 1u << 4;
inline constexpr std::uint16_t kFlagUnsigned = 1u << 5;
inline constexpr std::uint16_t kFlagZerofill = 1u << 6;
inline constexpr std::uint16_t kFlagBinary = 1u << 7;
inline constexpr std::uint16_t kFlagEnum = 1u << 8;
inline constexpr std::uint16_t kFlagAutoIncrement = 1u << 9;
inline constexpr std::uint16_t kFlagTimestamp = 1u << 10;
inline constexpr std::uint16_t kFlagSet = 1u << 11;
inline constexpr std::uint16_t kFlagNoDefaultValue = 1u << 12;
inline constexpr std::uint16_t kFlagOnUpdateNow = 1u << 13;
inline constexpr std::uint16_t kFlagNum = 1u << 15;

// In COM_STMT_EXECUTE parameter types, the second byte carries this bit for
// unsigned integers.
inline constexpr std::uint8_t kParamUnsigned = 0x80;

// ---------------------------------------------------------------- session track
// Entry types in the session-state part of an OK packet.
inline constexpr std::uint8_t kSessionTrackSystemVariables = 0;
inline constexpr std::uint8_t kSessionTrackSchema = 1;
inline constexpr std::uint8_t kSessionTrackStateChange = 2;
inline constexpr std::uint8_t kSessionTrackGtids = 3;
inline constexpr std::uint8_t kSessionTrackTransactionCharacteristics = 4;
inline constexpr std::uint8_t kSessionTrackTransactionState = 5;

// ---------------------------------------------------------------- packet headers
inline constexpr std::uint8_t kOkHeader = 0x00;
inline constexpr std::uint8_t kAuthMoreDataHeader = 0x01;
inline constexpr std::uint8_t kLocalInfileHeader = 0xFB;
inline constexpr std::uint8_t kEofHeader = 0xFE;  // also AuthSwitchRequest and the DEPRECATE_EOF OK
inline constexpr std::uint8_t kErrHeader = 0xFF;

// ---------------------------------------------------------------- errors
// An error number and the SQLSTATE the server pairs with it, so an ERR packet
// the proxy builds reads to a driver exactly like one from the server.
struct ErrorCode {
  std::uint16_t code;
  std::string_view sqlstate;
};

inline constexpr ErrorCode kErConCountError{1040, "08004"};
inline constexpr ErrorCode kErOutOfResources{1041, "HY000"};
inline constexpr ErrorCode kErHandshakeError{1043, "08S01"};
inline constexpr ErrorCode kErDbaccessDeniedError{1044, "42000"};
inline constexpr ErrorCode kErAccessDeniedError{1045, "28000"};
inline constexpr ErrorCode kErNoDbError{1046, "3D000"};
inline constexpr ErrorCode kErUnknownComError{1047, "08S01"};
inline constexpr ErrorCode kErBadDbError{1049, "42000"};
inline constexpr ErrorCode kErServerShutdown{1053, "08S01"};
inline constexpr ErrorCode kErBadFieldError{1054, "42S22"};
inline constexpr ErrorCode kErDupEntry{1062, "23000"};
inline constexpr ErrorCode kErParseError{1064, "42000"};
inline constexpr ErrorCode kErEmptyQuery{1065, "42000"};
inline constexpr ErrorCode kErUnknownError{1105, "HY000"};
inline constexpr ErrorCode kErErrorDuringCommit{1180, "HY000"};
inline constexpr ErrorCode kErHostIsBlocked{1129, "HY000"};
inline constexpr ErrorCode kErHostNotPrivileged{1130, "HY000"};
inline constexpr ErrorCode kErNoSuchTable{1146, "42S02"};
inline constexpr ErrorCode kErNetPacketTooLarge{1153, "08S01"};
inline constexpr ErrorCode kErNetPacketsOutOfOrder{1156, "08S01"};
inline constexpr ErrorCode kErNetReadError{1158, "08S01"};
inline constexpr ErrorCode kErNetReadInterrupted{1159, "08S01"};
inline constexpr ErrorCode kErNetErrorOnWrite{1160, "08S01"};
inline constexpr ErrorCode kErNetWriteInterrupted{1161, "08S01"};
inline constexpr ErrorCode kErUnknownSystemVariable{1193, "HY000"};
inline constexpr ErrorCode kErTooManyUserConnections{1203, "42000"};
inline constexpr ErrorCode kErLockWaitTimeout{1205, "HY000"};
inline constexpr ErrorCode kErWrongArguments{1210, "HY000"};
inline constexpr ErrorCode kErLockDeadlock{1213, "40001"};
inline constexpr ErrorCode kErSpecificAccessDeniedError{1227, "42000"};
inline constexpr ErrorCode kErNotSupportedYet{1235, "42000"};
inline constexpr ErrorCode kErUnknownStmtHandler{1243, "HY000"};
inline constexpr ErrorCode kErNotSupportedAuthMode{1251, "08004"};
inline constexpr ErrorCode kErOptionPreventsStatement{1290, "HY000"};  // e.g. --read-only
inline constexpr ErrorCode kErQueryInterrupted{1317, "70100"};
inline constexpr ErrorCode kErPluginIsNotLoaded{1524, "HY000"};
inline constexpr ErrorCode kErCantExecuteInReadOnlyTransaction{1792, "25006"};
inline constexpr ErrorCode kErMalformedPacket{1835, "HY000"};
inline constexpr ErrorCode kErConnectionKilled{1927, "70100"};  // MariaDB
inline constexpr ErrorCode kErStatementTimeout{1969, "70100"};  // MariaDB max_statement_time

}  // namespace shardgate::mysql
