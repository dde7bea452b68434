// MySQL/MariaDB command-phase messages, sans-io: the generic responses (OK,
// ERR, EOF), result sets (column definitions, text and binary rows) and the
// prepared-statement messages a proxy must look inside. Payloads in, payloads
// out; framing is packet.h's job.
//
// Parsed messages hold string_views into the payload they were parsed from: the
// payload must outlive them. They are read on the data path, where a copy per
// row or per OK would cost. The builders take the same structs.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/packet.h"

namespace shardgate::mysql {

// ---------------------------------------------------------------- OK / ERR / EOF

// One entry of the session-state information in an OK packet.
struct SessionStateChange {
  std::uint8_t type = 0;  // kSessionTrack*
  std::string_view name;  // kSessionTrackSystemVariables: the variable's name
  // The variable's value, the schema, the GTID set, the transaction state...;
  // for types this codec does not know, the entry's raw data.
  std::string_view value;
};

struct OkPacket {
  std::uint8_t header = kOkHeader;  // kEofHeader: the DEPRECATE_EOF end of a result set
  std::uint64_t affected_rows = 0;
  std::uint64_t last_insert_id = 0;
  std::uint16_t status_flags = 0;
  std::uint16_t warnings = 0;
  std::string_view info;
  // With kClientSessionTrack, when status_flags has kServerSessionStateChanged.
  std::vector<SessionStateChange> session_state;
};

Result<OkPacket> parse_ok(std::string_view payload, std::uint32_t capabilities);
// Writes session_state only when capabilities has kClientSessionTrack and
// status_flags has kServerSessionStateChanged.
std::string build_ok(const OkPacket& ok, std::uint32_t capabilities);

// The GTID the statement produced, as the server tracked it: a SESSION_TRACK_GTIDS
// entry (MySQL, session_track_gtids=OWN_GTID) or the last_gtid system variable
// (MariaDB, session_track_system_variables=last_gtid). Empty values do not count.
std::optional<std::string_view> produced_gtid(const OkPacket& ok);

struct ErrPacket {
  std::uint16_t code = 0;
  // 5 characters, or empty when the server sent none (errors it sends before it
  // knows the client's capabilities, e.g. too many connections at connect).
  std::string_view sqlstate;
  std::string_view message;
};

// MariaDB progress reports reuse the ERR header with code 0xFFFF; they only come
// when the client asked for them (kMariadbClientProgress), which shardgate does not.
Result<ErrPacket> parse_err(std::string_view payload, std::uint32_t capabilities);
// With kClientProtocol41 an SQLSTATE is always written: "HY000" when err.sqlstate
// is not 5 characters.
std::string build_err(const ErrPacket& err, std::uint32_t capabilities);
std::string build_err(ErrorCode code, std::string_view message,
                      std::uint32_t capabilities = kClientProtocol41);

struct EofPacket {
  std::uint16_t warnings = 0;
  std::uint16_t status_flags = 0;
};
Result<EofPacket> parse_eof(std::string_view payload, std::uint32_t capabilities);
std::string build_eof(const EofPacket& eof, std::uint32_t capabilities);

// The packet that ends column definitions or rows: an EOF packet, or with
// kClientDeprecateEof an OK packet with the 0xFE header (session state included).
Result<OkPacket> parse_end_of_rows(std::string_view payload, std::uint32_t capabilities);
std::string build_end_of_rows(std::uint16_t status_flags, std::uint16_t warnings,
                              std::uint32_t capabilities);

// ---------------------------------------------------------------- classifiers

enum class ResponseKind {
  Ok,
  Err,
  Eof,          // 0xFE in a payload under 9 bytes (COM_FIELD_LIST end, old auth switch)
  LocalInfile,  // 0xFB: LOAD DATA LOCAL INFILE request for a file name
  ResultSet,    // a column count: a result set follows
};
// The first packet of the response to a command (COM_QUERY, COM_STMT_EXECUTE...).
// Not for the authentication phase (see classify_auth_packet), where 0xFE is an
// AuthSwitchRequest of any length. With kMariadbClientCacheMetadata a
// column-count packet carries an extra byte; this only looks at the first.
Result<ResponseKind> classify_response(std::string_view payload);

enum class RowKind {
  Row,
  End,  // EOF, or with kClientDeprecateEof the OK packet with 0xFE header
  Err,
};
// A packet after the column definitions of a result set. 0xFE also starts a row
// whose first cell is 16 MB or more, so the length decides: an EOF is under 9
// bytes, and the DEPRECATE_EOF OK under 0xFFFFFF (the full logical payload).
Result<RowKind> classify_row(std::string_view payload, std::uint32_t capabilities);

// ---------------------------------------------------------------- result sets

struct ColumnDefinition {
  std::string_view catalog = "def";
  std::string_view schema;
  std::string_view table;      // alias
  std::string_view org_table;  // physical table
  std::string_view name;       // alias
  std::string_view org_name;   // physical column
  // MariaDB, with kMariadbClientExtendedMetadata: raw entries (a type byte and a
  // lenenc string each: the data type name such as "json", or a format).
  std::string_view extended_metadata;
  std::uint16_t charset = 0;
  std::uint32_t column_length = 0;
  std::uint8_t type = 0;    // kType*
  std::uint16_t flags = 0;  // kFlag*
  std::uint8_t decimals = 0;
};

// ColumnDefinition41. mariadb_capabilities are the negotiated extended ones:
// with kMariadbClientExtendedMetadata (libmariadb asks for it by default) an
// extra lenenc field follows org_name. The default value COM_FIELD_LIST
// appends is ignored.
Result<ColumnDefinition> parse_column_definition(std::string_view payload,
                                                 std::uint32_t mariadb_capabilities = 0);
std::string build_column_definition(const ColumnDefinition& column,
                                    std::uint32_t mariadb_capabilities = 0);

// A text-resultset row: one lenenc string per column, nullopt for SQL NULL (0xFB).
using TextRow = std::vector<std::optional<std::string_view>>;
Result<TextRow> parse_text_row(std::string_view payload, std::size_t columns);
std::string build_text_row(std::span<const std::optional<std::string_view>> cells);

// How a binary-protocol value is encoded: the column (or parameter) type and,
// for integers, whether it is unsigned.
struct BinaryType {
  std::uint8_t type = 0;
  bool is_unsigned = false;
};
BinaryType binary_type_of(const ColumnDefinition& column);

// DATE, DATETIME and TIMESTAMP.
struct DateTime {
  std::uint16_t year = 0;
  std::uint8_t month = 0;
  std::uint8_t day = 0;
  std::uint8_t hour = 0;
  std::uint8_t minute = 0;
  std::uint8_t second = 0;
  std::uint32_t microsecond = 0;
  bool operator==(const DateTime&) const = default;
};

// TIME: a signed duration that may exceed 24 hours.
struct TimeValue {
  bool negative = false;
  std::uint32_t days = 0;
  std::uint8_t hour = 0;
  std::uint8_t minute = 0;
  std::uint8_t second = 0;
  std::uint32_t microsecond = 0;
  bool operator==(const TimeValue&) const = default;
};

// One value of the binary protocol. std::monostate is SQL NULL. Integers are
// std::int64_t for signed columns and std::uint64_t for unsigned ones; DECIMAL,
// strings, blobs, BIT, ENUM, SET, JSON and GEOMETRY are their raw bytes.
using BinaryValue = std::variant<std::monostate, std::int64_t, std::uint64_t, float, double,
                                 DateTime, TimeValue, std::string_view>;
using BinaryRow = std::vector<BinaryValue>;

// One value (not NULL: NULLs live in the bitmap) of the given type.
Result<BinaryValue> read_binary_value(PayloadReader& reader, BinaryType type);
// Fails when the alternative does not fit the type (a string for an INT, 300 for
// a TINYINT, a negative number for an unsigned column). NULL is an error here.
Result<void> write_binary_value(std::string& out, BinaryType type, const BinaryValue& value);

// 0x00, a NULL bitmap with offset 2, then the non-NULL values in column order.
Result<BinaryRow> parse_binary_row(std::string_view payload, std::span<const BinaryType> types);
Result<std::string> build_binary_row(std::span<const BinaryType> types,
                                     std::span<const BinaryValue> values);

// ---------------------------------------------------------------- prepared statements

// MariaDB (10.2+) lets COM_STMT_EXECUTE name "the statement prepared just
// before" with this id, to pipeline prepare and execute.
inline constexpr std::uint32_t kMariadbLastStatementId = 0xFFFFFFFF;

// The first packet of a successful COM_STMT_PREPARE response.
struct StmtPrepareOk {
  std::uint32_t statement_id = 0;
  std::uint16_t num_columns = 0;
  std::uint16_t num_params = 0;
  std::uint16_t warnings = 0;
};
Result<StmtPrepareOk> parse_stmt_prepare_ok(std::string_view payload);
std::string build_stmt_prepare_ok(const StmtPrepareOk& ok);

struct StmtExecute {
  std::uint32_t statement_id = 0;
  std::uint8_t flags = 0;  // cursor type
  std::uint32_t iteration_count = 1;
  std::string_view null_bitmap;  // (num_params + 7) / 8 bytes, offset 0; empty without params
  bool new_params_bound = false;
  // With new_params_bound; otherwise the types of the previous execution apply.
  std::vector<BinaryType> param_types;
  // The non-NULL parameter values, binary-encoded, raw. Parameters sent with
  // COM_STMT_SEND_LONG_DATA have no value here.
  std::string_view values;
};
// num_params comes from the statement's COM_STMT_PREPARE response. The MySQL 8
// query-attributes layout (kClientQueryAttributes, flag 0x08) is refused:
// shardgate does not negotiate it.
Result<StmtExecute> parse_stmt_execute(std::string_view payload, std::uint16_t num_params);
// Binds types and values (NULLs go to the bitmap) with new_params_bound = 1.
Result<std::string> build_stmt_execute(std::uint32_t statement_id, std::uint8_t flags,
                                       std::span<const BinaryType> types,
                                       std::span<const BinaryValue> values);

// The statement id of COM_STMT_EXECUTE, _SEND_LONG_DATA, _CLOSE, _RESET or
// _FETCH, all of which carry it at payload offset 1. A proxy that prepares a
// statement on several backends rewrites the client's id to each backend's.
Result<std::uint32_t> statement_id_of(std::string_view payload);
Result<void> rewrite_stmt_id(std::string& payload, std::uint32_t statement_id);

}  // namespace shardgate::mysql
