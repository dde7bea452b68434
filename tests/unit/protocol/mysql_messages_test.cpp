// Unit tests of MySQL command-phase messages: OK/ERR/EOF, the response
// classifiers, column definitions, text and binary rows, and prepared
// statements. Captured payloads come from MariaDB 10.11.19 and libmariadb
// 3.3.20 on loopback, recorded once and pasted as hex.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/messages.h"
#include "tests/unit/protocol/hex.h"

namespace shardgate::mysql {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

using shardgate::testing::from_hex;

// The capabilities libmariadb negotiated in the captures (no DEPRECATE_EOF),
// and the MariaDB extended ones, extended column metadata among them.
constexpr std::uint32_t kCapturedCaps = 0x00bfa28c;
constexpr std::uint32_t kCapturedMariadbCaps = 0x1d;
constexpr std::uint32_t kCaps41 = kClientProtocol41 | kClientTransactions;
constexpr std::uint32_t kCapsTrack = kCaps41 | kClientSessionTrack;
constexpr std::uint32_t kCapsDeprecateEof = kCapsTrack | kClientDeprecateEof;

// ---------------------------------------------------------------- OK

TEST(MysqlOk, CapturedOkAfterSet) {
  const std::string payload = from_hex("00000002000000");
  auto ok = parse_ok(payload, kCapturedCaps);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->header, kOkHeader);
  EXPECT_EQ(ok->affected_rows, 0u);
  EXPECT_EQ(ok->status_flags, kServerStatusAutocommit);
  EXPECT_TRUE(ok->info.empty());
  EXPECT_TRUE(ok->session_state.empty());
  EXPECT_EQ(build_ok(*ok, kCapturedCaps), payload);
}

TEST(MysqlOk, CapturedSchemaChangeAfterLogin) {
  const std::string payload = from_hex("00000002400000000701050473686f70");
  auto ok = parse_ok(payload, kCapturedCaps);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->status_flags, kServerStatusAutocommit | kServerSessionStateChanged);
  ASSERT_EQ(ok->session_state.size(), 1u);
  EXPECT_EQ(ok->session_state[0].type, kSessionTrackSchema);
  EXPECT_EQ(ok->session_state[0].value, "shop");
  EXPECT_FALSE(produced_gtid(*ok).has_value());
  EXPECT_EQ(build_ok(*ok, kCapturedCaps), payload);
}

TEST(MysqlOk, CapturedMariadbLastGtidAfterInsert) {
  // INSERT with session_track_system_variables='last_gtid'.
  const std::string payload = from_hex("0001000240000000120010096c6173745f6774696405302d312d36");
  auto ok = parse_ok(payload, kCapturedCaps);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->affected_rows, 1u);
  EXPECT_EQ(ok->last_insert_id, 0u);
  ASSERT_EQ(ok->session_state.size(), 1u);
  EXPECT_EQ(ok->session_state[0].type, kSessionTrackSystemVariables);
  EXPECT_EQ(ok->session_state[0].name, "last_gtid");
  EXPECT_EQ(ok->session_state[0].value, "0-1-6");
  EXPECT_EQ(produced_gtid(*ok), "0-1-6");
  EXPECT_EQ(build_ok(*ok, kCapturedCaps), payload);
}

TEST(MysqlOk, MysqlSessionTrackGtids) {
  // Hand-assembled from the protocol documentation (session_track_gtids=OWN_GTID):
  // OK, 1 row, last id 5, status AUTOCOMMIT|SESSION_STATE_CHANGED, no warnings,
  // empty info, then a block with one SESSION_TRACK_GTIDS entry: type 3, length,
  // encoding 0, lenenc GTID.
  const std::string gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23";  // 39 bytes
  const std::string payload = "\x00\x01\x05\x02\x40\x00\x00\x00"s + "\x2b\x03\x29\x00\x27"s + gtid;
  auto ok = parse_ok(payload, kCapsTrack);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->affected_rows, 1u);
  EXPECT_EQ(ok->last_insert_id, 5u);
  ASSERT_EQ(ok->session_state.size(), 1u);
  EXPECT_EQ(ok->session_state[0].type, kSessionTrackGtids);
  EXPECT_EQ(ok->session_state[0].value, gtid);
  EXPECT_EQ(produced_gtid(*ok), gtid);
  EXPECT_EQ(build_ok(*ok, kCapsTrack), payload);
}

TEST(MysqlOk, SeveralSessionStateEntriesRoundTrip) {
  OkPacket in;
  in.affected_rows = 300;  // lenenc 0xFC form
  in.last_insert_id = 1ull << 40;
  in.status_flags = kServerStatusInTrans | kServerSessionStateChanged;
  in.warnings = 2;
  in.info = "Rows matched: 300  Changed: 300  Warnings: 2";
  in.session_state = {
      {kSessionTrackSystemVariables, "autocommit", "OFF"},
      {kSessionTrackSchema, "", "orders"},
      {kSessionTrackStateChange, "", "1"},
      {kSessionTrackGtids, "", "0-1-42"},
      {kSessionTrackTransactionState, "", "T_____W_"},
      {9, "", "opaque\x01\x02"},  // unknown type: raw data
  };
  const std::string wire = build_ok(in, kCapsTrack);
  auto out = parse_ok(wire, kCapsTrack);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(out->affected_rows, 300u);
  EXPECT_EQ(out->last_insert_id, 1ull << 40);
  EXPECT_EQ(out->status_flags, in.status_flags);
  EXPECT_EQ(out->warnings, 2);
  EXPECT_EQ(out->info, in.info);
  ASSERT_EQ(out->session_state.size(), in.session_state.size());
  for (std::size_t i = 0; i < in.session_state.size(); ++i) {
    EXPECT_EQ(out->session_state[i].type, in.session_state[i].type) << i;
    EXPECT_EQ(out->session_state[i].name, in.session_state[i].name) << i;
    EXPECT_EQ(out->session_state[i].value, in.session_state[i].value) << i;
  }
  EXPECT_EQ(produced_gtid(*out), "0-1-42");
}

TEST(MysqlOk, InfoFormsFollowCapabilities) {
  OkPacket in;
  in.info = "Records: 3  Duplicates: 0  Warnings: 0";
  // Without session tracking the info runs to the end of the packet.
  const std::string plain = build_ok(in, kCaps41);
  EXPECT_EQ(plain, "\x00\x00\x00\x00\x00\x00\x00"s + std::string(in.info));
  EXPECT_EQ(parse_ok(plain, kCaps41)->info, in.info);
  // With it, a lenenc string; nothing at all when empty and nothing changed.
  const std::string tracked = build_ok(in, kCapsTrack);
  EXPECT_EQ(tracked, "\x00\x00\x00\x00\x00\x00\x00"s + static_cast<char>(in.info.size()) +
                         std::string(in.info));
  EXPECT_EQ(parse_ok(tracked, kCapsTrack)->info, in.info);
  EXPECT_EQ(build_ok(OkPacket{}, kCapsTrack).size(), 7u);
  // Pre-4.1 with transactions: a status word but no warnings.
  OkPacket old;
  old.status_flags = kServerStatusAutocommit;
  const std::string old_wire = build_ok(old, kClientTransactions);
  EXPECT_EQ(old_wire, "\x00\x00\x00\x02\x00"s);
  EXPECT_EQ(parse_ok(old_wire, kClientTransactions)->status_flags, kServerStatusAutocommit);
}

TEST(MysqlOk, MalformedOkIsError) {
  EXPECT_FALSE(parse_ok("", kCapsTrack).has_value());
  EXPECT_FALSE(parse_ok("\xff\x00\x00"sv, kCapsTrack).has_value());
  EXPECT_FALSE(parse_ok("\x00\x00\x00\x02"sv, kCapsTrack).has_value());
  // Session-state block longer than the packet.
  EXPECT_FALSE(parse_ok("\x00\x00\x00\x02\x40\x00\x00\x00\x09\x01\x05"sv, kCapsTrack).has_value());
  // An entry whose inner lenenc runs past the entry.
  EXPECT_FALSE(
      parse_ok("\x00\x00\x00\x02\x40\x00\x00\x00\x04\x01\x02\x05x"sv, kCapsTrack).has_value());
  const std::string good = from_hex("0001000240000000120010096c6173745f6774696405302d312d36");
  for (std::size_t n = 0; n < good.size(); ++n) {
    (void)parse_ok(std::string_view(good).substr(0, n), kCapturedCaps);  // no crash
  }
}

// ---------------------------------------------------------------- ERR

TEST(MysqlErr, CapturedAccessDenied) {
  const std::string payload = from_hex(
      "ff15042332383030304163636573732064656e69656420666f72207573657220276170702740273132372e"
      "302e302e312720287573696e672070617373776f72643a2059455329");
  auto err = parse_err(payload, kCapturedCaps);
  ASSERT_TRUE(err.has_value()) << err.error().message();
  EXPECT_EQ(err->code, 1045);
  EXPECT_EQ(err->sqlstate, "28000");
  EXPECT_EQ(err->message, "Access denied for user 'app'@'127.0.0.1' (using password: YES)");
  EXPECT_EQ(build_err(kErAccessDeniedError, err->message, kCapturedCaps), payload);
}

TEST(MysqlErr, BuildThenParse) {
  const std::string wire =
      build_err(kErNotSupportedYet, "cross-shard JOIN is not supported", kCaps41);
  EXPECT_EQ(wire, "\xff\xd3\x04#42000cross-shard JOIN is not supported"s);
  auto err = parse_err(wire, kCaps41);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->code, 1235);
  EXPECT_EQ(err->sqlstate, "42000");
  EXPECT_EQ(err->message, "cross-shard JOIN is not supported");
}

TEST(MysqlErr, WithoutSqlState) {
  // Sent before the server knows the client's capabilities.
  auto early = parse_err("\xff\x10\x04Too many connections"sv, kCaps41);
  ASSERT_TRUE(early.has_value());
  EXPECT_EQ(early->code, 1040);
  EXPECT_TRUE(early->sqlstate.empty());
  EXPECT_EQ(early->message, "Too many connections");
  // A pre-4.1 client never gets one; a '#' is then part of the message.
  const std::string old = build_err(ErrPacket{1105, "HY000", "#1 failed"}, 0);
  EXPECT_EQ(old, "\xff\x51\x04#1 failed"s);
  EXPECT_EQ(parse_err(old, 0)->message, "#1 failed");
  // A bad SQLSTATE is replaced rather than written short.
  EXPECT_EQ(build_err(ErrPacket{1105, "X", "m"}, kCaps41), "\xff\x51\x04#HY000m"s);
}

TEST(MysqlErr, MalformedErrIsError) {
  EXPECT_FALSE(parse_err("", kCaps41).has_value());
  EXPECT_FALSE(parse_err("\xff\x15"sv, kCaps41).has_value());
  EXPECT_FALSE(parse_err("\xff\x15\x04#280"sv, kCaps41).has_value());
  EXPECT_FALSE(parse_err("\x00\x15\x04"sv, kCaps41).has_value());
}

// ---------------------------------------------------------------- EOF / end of rows

TEST(MysqlEof, CapturedEof) {
  const std::string payload = from_hex("fe00002200");
  auto eof = parse_eof(payload, kCapturedCaps);
  ASSERT_TRUE(eof.has_value()) << eof.error().message();
  EXPECT_EQ(eof->warnings, 0);
  EXPECT_EQ(eof->status_flags, kServerStatusAutocommit | kServerQueryNoIndexUsed);
  EXPECT_EQ(build_eof(*eof, kCapturedCaps), payload);
  EXPECT_EQ(build_end_of_rows(eof->status_flags, 0, kCapturedCaps), payload);
  auto end = parse_end_of_rows(payload, kCapturedCaps);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->status_flags, eof->status_flags);
}

TEST(MysqlEof, PreProtocol41IsOneByte) {
  EXPECT_EQ(build_eof(EofPacket{3, 2}, 0), "\xfe");
  EXPECT_TRUE(parse_eof("\xfe", 0).has_value());
}

TEST(MysqlEof, MalformedEofIsError) {
  EXPECT_FALSE(parse_eof("\xfe\x00\x00"sv, kCaps41).has_value());
  EXPECT_FALSE(parse_eof("\x00\x00\x00\x02\x00"sv, kCaps41).has_value());
  EXPECT_FALSE(parse_eof("\xfe\x00\x00\x02\x00\x00\x00\x00\x00"sv, kCaps41).has_value());
}

TEST(MysqlEof, DeprecateEofUsesOkWithFeHeader) {
  const std::string wire =
      build_end_of_rows(kServerStatusAutocommit | kServerMoreResultsExists, 1, kCapsDeprecateEof);
  EXPECT_EQ(wire, "\xfe\x00\x00\x0a\x00\x01\x00"s);
  auto end = parse_end_of_rows(wire, kCapsDeprecateEof);
  ASSERT_TRUE(end.has_value()) << end.error().message();
  EXPECT_EQ(end->header, kEofHeader);
  EXPECT_EQ(end->status_flags, kServerStatusAutocommit | kServerMoreResultsExists);
  EXPECT_EQ(end->warnings, 1);
  // An OK with the 0x00 header does not end rows.
  EXPECT_FALSE(parse_end_of_rows("\x00\x00\x00\x02\x00\x00\x00"sv, kCapsDeprecateEof).has_value());
  // It may carry session state, which makes it longer than an EOF.
  OkPacket ok;
  ok.header = kEofHeader;
  ok.status_flags = kServerSessionStateChanged;
  ok.session_state = {{kSessionTrackGtids, "", "0-1-99"}};
  const std::string tracked = build_ok(ok, kCapsDeprecateEof);
  EXPECT_GT(tracked.size(), 9u);
  EXPECT_EQ(*classify_row(tracked, kCapsDeprecateEof), RowKind::End);
  EXPECT_EQ(produced_gtid(*parse_end_of_rows(tracked, kCapsDeprecateEof)), "0-1-99");
}

// ---------------------------------------------------------------- classifiers

TEST(MysqlClassify, FirstResponsePacket) {
  EXPECT_EQ(*classify_response("\x00\x00\x00\x02\x00\x00\x00"sv), ResponseKind::Ok);
  EXPECT_EQ(*classify_response("\xff\x15\x04#28000x"sv), ResponseKind::Err);
  EXPECT_EQ(*classify_response("\xfb/tmp/data.csv"sv), ResponseKind::LocalInfile);
  EXPECT_EQ(*classify_response("\xfe\x00\x00\x02\x00"sv), ResponseKind::Eof);
  EXPECT_EQ(*classify_response("\xfe"sv), ResponseKind::Eof);
  EXPECT_EQ(*classify_response("\xfe\x00\x00\x00\x00\x00\x00\x00"sv), ResponseKind::Eof);
  // Nine bytes starting 0xFE: an 8-byte column count.
  EXPECT_EQ(*classify_response("\xfe\x01\x00\x00\x01\x00\x00\x00\x00"sv), ResponseKind::ResultSet);
  EXPECT_EQ(*classify_response("\x05"sv), ResponseKind::ResultSet);
  EXPECT_EQ(*classify_response("\x09\x00"sv), ResponseKind::ResultSet);  // MariaDB cached metadata
  EXPECT_EQ(*classify_response("\xfc\x00\x01"sv), ResponseKind::ResultSet);
  EXPECT_FALSE(classify_response("").has_value());
}

TEST(MysqlClassify, RowPhasePackets) {
  EXPECT_EQ(*classify_row("\x01\x31\xfb"sv, kCaps41), RowKind::Row);
  EXPECT_EQ(*classify_row("\x00\x00\x01\x00\x00\x00"sv, kCaps41), RowKind::Row);  // binary
  EXPECT_EQ(*classify_row("\xfe\x00\x00\x22\x00"sv, kCaps41), RowKind::End);
  EXPECT_EQ(*classify_row("\xff\x15\x04#HY000x"sv, kCaps41), RowKind::Err);
  // A text row whose first cell is 16 MB or more starts with 0xFE too.
  std::string big_cell_row = "\xfe\x00\x00\x00\x01\x00\x00\x00\x00"s;
  EXPECT_EQ(*classify_row(big_cell_row, kCaps41), RowKind::Row);
  EXPECT_EQ(*classify_row(big_cell_row, kCapsDeprecateEof), RowKind::End);  // short: an OK
  big_cell_row.resize(9 + (1u << 24), 'x');
  EXPECT_EQ(*classify_row(big_cell_row, kCapsDeprecateEof), RowKind::Row);
  EXPECT_FALSE(classify_row("", kCaps41).has_value());
}

// ---------------------------------------------------------------- column definitions

TEST(MysqlColumnDefinition, CapturedColumns) {
  struct Captured {
    const char* hex;
    const char* name;
    std::uint16_t charset;
    std::uint32_t length;
    std::uint8_t type;
    std::uint16_t flags;
    std::uint8_t decimals;
  };
  const Captured columns[] = {
      {"036465660473686f7001740174026964026964000c3f000b000000030350000000", "id", 63, 11,
       kTypeLong, 0x5003, 0},
      {"036465660473686f7001740174046e616d65046e616d65000c21003c000000fd0000000000", "name", 33, 60,
       kTypeVarString, 0, 0},
      {"036465660473686f7001740174057072696365057072696365000c3f0008000000f60000020000", "price",
       63, 8, kTypeNewDecimal, 0, 2},
      {"036465660473686f7001740174027473027473000c3f00170000000c8000030000", "ts", 63, 23,
       kTypeDateTime, kFlagBinary, 3},
      {"036465660473686f700174017401640164000c3f00160000000500001f0000", "d", 63, 22, kTypeDouble,
       0, 31},
  };
  for (const auto& c : columns) {
    const std::string payload = from_hex(c.hex);
    auto col = parse_column_definition(payload, kCapturedMariadbCaps);
    ASSERT_TRUE(col.has_value()) << c.name << ": " << col.error().message();
    EXPECT_EQ(col->catalog, "def");
    EXPECT_EQ(col->schema, "shop");
    EXPECT_EQ(col->table, "t");
    EXPECT_EQ(col->org_table, "t");
    EXPECT_EQ(col->name, c.name);
    EXPECT_EQ(col->org_name, c.name);
    EXPECT_EQ(col->charset, c.charset) << c.name;
    EXPECT_EQ(col->column_length, c.length) << c.name;
    EXPECT_EQ(col->type, c.type) << c.name;
    EXPECT_EQ(col->flags, c.flags) << c.name;
    EXPECT_EQ(col->decimals, c.decimals) << c.name;
    EXPECT_TRUE(col->extended_metadata.empty());
    EXPECT_EQ(build_column_definition(*col, kCapturedMariadbCaps), payload) << c.name;
    // Without the capability the extra field is misread: the fixed part then
    // starts at the wrong byte and fails its length check.
    EXPECT_FALSE(parse_column_definition(payload).has_value()) << c.name;
  }
}

TEST(MysqlColumnDefinition, RoundTripWithAndWithoutExtendedMetadata) {
  ColumnDefinition in;
  in.schema = "shop";
  in.table = "o";
  in.org_table = "orders";
  in.name = "doc";
  in.org_name = "document";
  in.extended_metadata = "\x00\x04json"sv;
  in.charset = 45;
  in.column_length = 0xFFFFFFFF;
  in.type = kTypeBlob;
  in.flags = kFlagBlob | kFlagBinary;
  in.decimals = 0;
  const std::uint32_t caps = kMariadbClientExtendedMetadata;
  const std::string wire = build_column_definition(in, caps);  // out views into it
  auto out = parse_column_definition(wire, caps);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(out->org_table, "orders");
  EXPECT_EQ(out->org_name, "document");
  EXPECT_EQ(out->extended_metadata, in.extended_metadata);
  EXPECT_EQ(out->column_length, 0xFFFFFFFFu);
  EXPECT_EQ(out->flags, in.flags);
  const std::string plain = build_column_definition(in);
  auto plain_out = parse_column_definition(plain);
  ASSERT_TRUE(plain_out.has_value()) << plain_out.error().message();
  EXPECT_TRUE(plain_out->extended_metadata.empty());
  EXPECT_EQ(plain_out->name, "doc");
  EXPECT_EQ(plain_out->type, kTypeBlob);
}

TEST(MysqlColumnDefinition, ExpressionColumnAndTruncation) {
  // CAST(1 AS UNSIGNED): no schema or table, unsigned LONG.
  const std::string payload = from_hex(
      "036465660000001343415354283120415320554e5349474e45442900000c3f000100000003a100000000");
  auto col = parse_column_definition(payload, kCapturedMariadbCaps);
  ASSERT_TRUE(col.has_value()) << col.error().message();
  EXPECT_TRUE(col->schema.empty());
  EXPECT_EQ(col->name, "CAST(1 AS UNSIGNED)");
  EXPECT_EQ(col->type, kTypeLong);
  EXPECT_TRUE(binary_type_of(*col).is_unsigned);
  for (std::size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(
        parse_column_definition(std::string_view(payload).substr(0, n), kCapturedMariadbCaps)
            .has_value())
        << n;
  }
  // COM_FIELD_LIST appends a default value: ignored.
  EXPECT_TRUE(parse_column_definition(payload + "\x01"
                                                "0"s,
                                      kCapturedMariadbCaps)
                  .has_value());
  // A fixed-fields length under 12 is malformed.
  std::string bad = payload;
  bad[bad.find('\x0c')] = '\x0b';
  EXPECT_FALSE(parse_column_definition(bad, kCapturedMariadbCaps).has_value());
}

// ---------------------------------------------------------------- text rows

TEST(MysqlTextRow, CapturedRowsWithNulls) {
  const std::string rows[] = {
      from_hex("0131056170706c6504312e353017323032342d30322d32392031323a33343a35362e37383903322e"
               "35"),
      from_hex("0132fbfbfbfb"),
      from_hex("0133047065617204302e393917323032342d30312d30312030303a30303a30302e303030062d3165"
               "333030"),
  };
  auto first = parse_text_row(rows[0], 5);
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(*first, (TextRow{"1"sv, "apple"sv, "1.50"sv, "2024-02-29 12:34:56.789"sv, "2.5"sv}));
  auto second = parse_text_row(rows[1], 5);
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_EQ(*second, (TextRow{"2"sv, std::nullopt, std::nullopt, std::nullopt, std::nullopt}));
  auto third = parse_text_row(rows[2], 5);
  ASSERT_TRUE(third.has_value()) << third.error().message();
  EXPECT_EQ((*third)[4], "-1e300");
  for (const auto& row : rows) {
    auto parsed = parse_text_row(row, 5);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(build_text_row(*parsed), row);
  }
}

TEST(MysqlTextRow, RoundTripEdgeCells) {
  const std::string big(70000, 'b');  // lenenc 0xFD form
  const std::vector<std::optional<std::string_view>> cells = {
      std::nullopt, ""sv, "\xfb"sv, std::string_view(big), "\0\0"sv, std::nullopt};
  const std::string wire = build_text_row(cells);
  auto row = parse_text_row(wire, cells.size());
  ASSERT_TRUE(row.has_value()) << row.error().message();
  EXPECT_EQ(*row, cells);
  EXPECT_TRUE(build_text_row({}).empty());
  EXPECT_TRUE(parse_text_row("", 0)->empty());
}

TEST(MysqlTextRow, WrongShapeIsError) {
  const std::string row = from_hex("0132fbfbfbfb");
  EXPECT_FALSE(parse_text_row(row, 6).has_value());  // too few cells
  EXPECT_FALSE(parse_text_row(row, 4).has_value());  // trailing bytes
  EXPECT_FALSE(parse_text_row("\x05"
                              "abc"sv,
                              1)
                   .has_value());
  EXPECT_FALSE(parse_text_row("\xff"sv, 1).has_value());
}

// ---------------------------------------------------------------- binary rows

// The column types of the captured prepared statement: id, name, price, ts, d,
// CAST(ts AS DATE), CAST('-01:02:03.5' AS TIME(1)), CAST(id AS SIGNED) - 5,
// CAST(1 AS UNSIGNED).
const std::vector<BinaryType> kCapturedTypes = {
    {kTypeLong, false},     {kTypeVarString, false}, {kTypeNewDecimal, false},
    {kTypeDateTime, false}, {kTypeDouble, false},    {kTypeDate, false},
    {kTypeTime, false},     {kTypeLongLong, false},  {kTypeLong, true}};

TEST(MysqlBinaryRow, CapturedRows) {
  const TimeValue minus_1h2m3_5s{true, 0, 1, 2, 3, 500000};
  const std::string row1 = from_hex(
      "00000001000000056170706c6504312e35300be807021d0c2238080a0c00000000000000044004e807021d0c"
      "010000000001020320a10700fcffffffffffffff01000000");
  auto r1 = parse_binary_row(row1, kCapturedTypes);
  ASSERT_TRUE(r1.has_value()) << r1.error().message();
  const BinaryRow expected1 = {std::int64_t{1},
                               "apple"sv,
                               "1.50"sv,
                               DateTime{2024, 2, 29, 12, 34, 56, 789000},
                               2.5,
                               DateTime{2024, 2, 29, 0, 0, 0, 0},
                               minus_1h2m3_5s,
                               std::int64_t{-4},
                               std::uint64_t{1}};
  EXPECT_EQ(*r1, expected1);

  // Row 2: name, price, ts, d and the date are NULL (bitmap 0xF8 0x00).
  const std::string row2 =
      from_hex("00f800020000000c010000000001020320a10700fdffffffffffffff01000000");
  auto r2 = parse_binary_row(row2, kCapturedTypes);
  ASSERT_TRUE(r2.has_value()) << r2.error().message();
  const BinaryRow expected2 = {
      std::int64_t{2}, {}, {}, {}, {}, {}, minus_1h2m3_5s, std::int64_t{-3}, std::uint64_t{1}};
  EXPECT_EQ(*r2, expected2);

  // Row 3: a midnight DATETIME takes the 4-byte form; -1e300.
  const std::string row3 = from_hex(
      "00000003000000047065617204302e393904e80701019c7500883ce437fe04e80701010c0100000000010203"
      "20a10700feffffffffffffff01000000");
  auto r3 = parse_binary_row(row3, kCapturedTypes);
  ASSERT_TRUE(r3.has_value()) << r3.error().message();
  EXPECT_EQ((*r3)[3], BinaryValue{(DateTime{2024, 1, 1, 0, 0, 0, 0})});
  EXPECT_EQ((*r3)[4], BinaryValue{-1e300});

  for (const std::string* row : {&row1, &row2, &row3}) {
    auto parsed = parse_binary_row(*row, kCapturedTypes);
    ASSERT_TRUE(parsed.has_value());
    auto rebuilt = build_binary_row(kCapturedTypes, *parsed);
    ASSERT_TRUE(rebuilt.has_value()) << rebuilt.error().message();
    EXPECT_EQ(*rebuilt, *row);
  }
}

TEST(MysqlBinaryRow, RoundTripEveryType) {
  const std::string blob(300, '\x01');
  const std::vector<BinaryType> types = {
      {kTypeTiny, false},       {kTypeTiny, true},       {kTypeShort, false},
      {kTypeYear, true},        {kTypeInt24, false},     {kTypeLong, true},
      {kTypeLongLong, false},   {kTypeLongLong, true},   {kTypeFloat, false},
      {kTypeDouble, false},     {kTypeDate, false},      {kTypeDateTime, false},
      {kTypeDateTime, false},   {kTypeTimestamp, false}, {kTypeDateTime, false},
      {kTypeTime, false},       {kTypeTime, false},      {kTypeTime, false},
      {kTypeNewDecimal, false}, {kTypeBlob, false},      {kTypeString, false},
      {kTypeBit, false},        {kTypeJson, false},      {kTypeNull, false}};
  const BinaryRow values = {std::int64_t{-128},
                            std::uint64_t{255},
                            std::int64_t{-32768},
                            std::uint64_t{2024},
                            std::int64_t{-8388608},
                            std::uint64_t{0xFFFFFFFF},
                            std::numeric_limits<std::int64_t>::min(),
                            std::numeric_limits<std::uint64_t>::max(),
                            1.5f,
                            -0.1,
                            DateTime{1999, 12, 31, 0, 0, 0, 0},
                            DateTime{},  // zero date: 0-byte form
                            DateTime{2000, 1, 2, 3, 4, 5, 0},
                            DateTime{2038, 1, 19, 3, 14, 7, 999999},
                            DateTime{0, 0, 0, 0, 0, 1, 0},
                            TimeValue{},
                            TimeValue{false, 34, 23, 59, 59, 0},
                            TimeValue{true, 0, 0, 0, 0, 1},
                            "-12345.6789"sv,
                            std::string_view(blob),
                            ""sv,
                            "\x05"sv,
                            "{\"a\":1}"sv,
                            {}};
  auto wire = build_binary_row(types, values);
  ASSERT_TRUE(wire.has_value()) << wire.error().message();
  auto row = parse_binary_row(*wire, types);
  ASSERT_TRUE(row.has_value()) << row.error().message();
  EXPECT_EQ(*row, values);
  // Truncated anywhere: an error, never a read past the end.
  for (std::size_t n = 0; n < wire->size(); ++n) {
    EXPECT_FALSE(parse_binary_row(std::string_view(*wire).substr(0, n), types).has_value()) << n;
  }
}

TEST(MysqlBinaryRow, NullBitmapCrossesBytes) {
  // Columns 6 and 14 sit at bits 8 and 16 of the offset-2 bitmap: new bytes.
  std::vector<BinaryType> types(15, BinaryType{kTypeTiny, false});
  BinaryRow values(15, BinaryValue{std::int64_t{7}});
  values[0] = {};
  values[6] = {};
  values[14] = {};
  auto wire = build_binary_row(types, values);
  ASSERT_TRUE(wire.has_value());
  ASSERT_EQ(wire->size(), 1 + 3 + 12u);
  EXPECT_EQ(wire->substr(1, 3), "\x04\x01\x01"s);
  auto row = parse_binary_row(*wire, types);
  ASSERT_TRUE(row.has_value()) << row.error().message();
  EXPECT_EQ(*row, values);
}

TEST(MysqlBinaryRow, ValuesThatDoNotFitAreErrors) {
  std::string out;
  EXPECT_FALSE(write_binary_value(out, {kTypeTiny, false}, std::int64_t{128}).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeTiny, false}, std::int64_t{-129}).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeTiny, true}, std::int64_t{-1}).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeTiny, true}, std::uint64_t{256}).has_value());
  EXPECT_FALSE(
      write_binary_value(out, {kTypeLongLong, false}, std::numeric_limits<std::uint64_t>::max())
          .has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeLong, false}, "12"sv).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeVarString, false}, std::int64_t{1}).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeDouble, false}, 1.5f).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeDate, false}, TimeValue{}).has_value());
  EXPECT_FALSE(write_binary_value(out, {kTypeLong, false}, BinaryValue{}).has_value());
  EXPECT_FALSE(write_binary_value(out, {0x42, false}, "x"sv).has_value());
  EXPECT_TRUE(out.empty());
  // Signed values that do fit an unsigned column are fine.
  EXPECT_TRUE(write_binary_value(out, {kTypeTiny, true}, std::int64_t{200}).has_value());
  EXPECT_EQ(out, "\xc8");
  EXPECT_FALSE(build_binary_row(kCapturedTypes, BinaryRow{}).has_value());
}

TEST(MysqlBinaryRow, MalformedRowsAreErrors) {
  const std::vector<BinaryType> one_date = {{kTypeDateTime, false}};
  EXPECT_FALSE(parse_binary_row("", one_date).has_value());
  EXPECT_FALSE(parse_binary_row("\x01\x00"sv, one_date).has_value());  // header
  EXPECT_FALSE(parse_binary_row("\x00\x00\x05\x01\x02\x03\x04\x05"sv, one_date).has_value());
  EXPECT_TRUE(parse_binary_row("\x00\x00\x00"sv, one_date).has_value());       // 0-length DATETIME
  EXPECT_FALSE(parse_binary_row("\x00\x00\x00\x00"sv, one_date).has_value());  // extra byte
  const std::vector<BinaryType> one_time = {{kTypeTime, false}};
  EXPECT_FALSE(
      parse_binary_row("\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00"sv, one_time).has_value());
  const std::vector<BinaryType> unknown = {{0x42, false}};
  EXPECT_FALSE(parse_binary_row("\x00\x00\x01"sv, unknown).has_value());
}

// ---------------------------------------------------------------- prepared statements

TEST(MysqlStmtPrepareOk, CapturedResponse) {
  const std::string payload = from_hex("000100000009000100000000");
  auto ok = parse_stmt_prepare_ok(payload);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->statement_id, 1u);
  EXPECT_EQ(ok->num_columns, 9);
  EXPECT_EQ(ok->num_params, 1);
  EXPECT_EQ(ok->warnings, 0);
  EXPECT_EQ(build_stmt_prepare_ok(*ok), payload);
  EXPECT_EQ(*classify_response(payload), ResponseKind::Ok);
}

TEST(MysqlStmtPrepareOk, RoundTripAndErrors) {
  const StmtPrepareOk in{0xCAFEBABE, 3, 65535, 7};
  auto out = parse_stmt_prepare_ok(build_stmt_prepare_ok(in));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->statement_id, in.statement_id);
  EXPECT_EQ(out->num_columns, 3);
  EXPECT_EQ(out->num_params, 65535);
  EXPECT_EQ(out->warnings, 7);
  EXPECT_FALSE(parse_stmt_prepare_ok("\x00\x01\x00\x00"sv).has_value());
  EXPECT_FALSE(parse_stmt_prepare_ok("\xff\x01\x00\x00\x00\x00\x00\x00\x00\x00"sv).has_value());
}

TEST(MysqlStmtExecute, CapturedExecute) {
  const std::string payload = from_hex("17010000000001000000000108000100000000000000");
  auto e = parse_stmt_execute(payload, 1);
  ASSERT_TRUE(e.has_value()) << e.error().message();
  EXPECT_EQ(e->statement_id, 1u);
  EXPECT_EQ(e->flags, 0);
  EXPECT_EQ(e->iteration_count, 1u);
  EXPECT_EQ(e->null_bitmap, "\x00"sv);
  EXPECT_TRUE(e->new_params_bound);
  ASSERT_EQ(e->param_types.size(), 1u);
  EXPECT_EQ(e->param_types[0].type, kTypeLongLong);
  EXPECT_FALSE(e->param_types[0].is_unsigned);
  PayloadReader values(e->values);
  auto v = read_binary_value(values, e->param_types[0]);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, BinaryValue{std::int64_t{1}});
  EXPECT_TRUE(values.at_end());

  const BinaryType type{kTypeLongLong, false};
  const BinaryValue one{std::int64_t{1}};
  auto rebuilt = build_stmt_execute(1, 0, {&type, 1}, {&one, 1});
  ASSERT_TRUE(rebuilt.has_value()) << rebuilt.error().message();
  EXPECT_EQ(*rebuilt, payload);
}

TEST(MysqlStmtExecute, ParamsWithNullsAndUnsignedRoundTrip) {
  const std::vector<BinaryType> types = {
      {kTypeLong, true}, {kTypeVarString, false}, {kTypeNull, false}, {kTypeDouble, false}};
  const BinaryRow values = {std::uint64_t{4000000000u}, "k"sv, {}, 0.25};
  auto wire = build_stmt_execute(77, 1, types, values);
  ASSERT_TRUE(wire.has_value()) << wire.error().message();
  auto e = parse_stmt_execute(*wire, 4);
  ASSERT_TRUE(e.has_value()) << e.error().message();
  EXPECT_EQ(e->statement_id, 77u);
  EXPECT_EQ(e->flags, 1);
  EXPECT_EQ(e->null_bitmap, "\x04"sv);
  ASSERT_EQ(e->param_types.size(), 4u);
  EXPECT_TRUE(e->param_types[0].is_unsigned);
  EXPECT_EQ(e->param_types[1].type, kTypeVarString);
  PayloadReader r(e->values);
  EXPECT_EQ(*read_binary_value(r, e->param_types[0]), BinaryValue{std::uint64_t{4000000000u}});
  EXPECT_EQ(*read_binary_value(r, e->param_types[1]), BinaryValue{"k"sv});
  EXPECT_EQ(*read_binary_value(r, e->param_types[3]), BinaryValue{0.25});
  EXPECT_TRUE(r.at_end());
}

TEST(MysqlStmtExecute, NoParamsAndNotRebound) {
  auto none = build_stmt_execute(5, 0, {}, {});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, "\x17\x05\x00\x00\x00\x00\x01\x00\x00\x00"s);
  auto e = parse_stmt_execute(*none, 0);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->null_bitmap.empty());
  EXPECT_FALSE(e->new_params_bound);
  EXPECT_TRUE(e->values.empty());
  // Re-execution with the types of the previous one: bound flag 0, no types.
  const std::string again = "\x17\x05\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x2a\x00\x00\x00"s;
  auto rebound = parse_stmt_execute(again, 1);
  ASSERT_TRUE(rebound.has_value()) << rebound.error().message();
  EXPECT_FALSE(rebound->new_params_bound);
  EXPECT_TRUE(rebound->param_types.empty());
  EXPECT_EQ(rebound->values, "\x2a\x00\x00\x00"sv);
}

TEST(MysqlStmtExecute, MalformedIsError) {
  const std::string good = from_hex("17010000000001000000000108000100000000000000");
  // Cuts before the end of the types; the values themselves are left raw.
  for (std::size_t n = 0; n < 14; ++n) {
    EXPECT_FALSE(parse_stmt_execute(std::string_view(good).substr(0, n), 1).has_value()) << n;
  }
  EXPECT_FALSE(parse_stmt_execute(good, 9).has_value());  // 9 types do not fit
  std::string bad_flag = good;
  bad_flag[11] = '\x02';
  EXPECT_FALSE(parse_stmt_execute(bad_flag, 1).has_value());
  std::string attrs = good;
  attrs[5] = '\x08';  // PARAMETER_COUNT_AVAILABLE: query attributes
  EXPECT_FALSE(parse_stmt_execute(attrs, 1).has_value());
  EXPECT_FALSE(parse_stmt_execute("\x03SELECT 1"sv, 0).has_value());
  EXPECT_FALSE(build_stmt_execute(1, 0, kCapturedTypes, BinaryRow{}).has_value());
}

TEST(MysqlStmtId, ReadAndRewriteForEveryStatementCommand) {
  const std::string captured_close = from_hex("1901000000");
  EXPECT_EQ(*statement_id_of(captured_close), 1u);
  for (const std::uint8_t command :
       {kComStmtExecute, kComStmtSendLongData, kComStmtClose, kComStmtReset, kComStmtFetch}) {
    std::string payload = std::string(1, static_cast<char>(command)) + "\x01\x00\x00\x00tail"s;
    ASSERT_TRUE(rewrite_stmt_id(payload, 0x0A0B0C0D).has_value()) << int{command};
    EXPECT_EQ(payload, std::string(1, static_cast<char>(command)) + "\x0d\x0c\x0b\x0atail"s);
    EXPECT_EQ(*statement_id_of(payload), 0x0A0B0C0Du);
  }
  std::string execute = from_hex("17010000000001000000000108000100000000000000");
  ASSERT_TRUE(rewrite_stmt_id(execute, 42).has_value());
  auto e = parse_stmt_execute(execute, 1);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->statement_id, 42u);
  PayloadReader values(e->values);
  EXPECT_EQ(*read_binary_value(values, e->param_types[0]), BinaryValue{std::int64_t{1}});
}

TEST(MysqlStmtId, OtherCommandsAndShortPayloadsAreErrors) {
  std::string query = "\x03SELECT 1"s;
  EXPECT_FALSE(rewrite_stmt_id(query, 1).has_value());
  EXPECT_EQ(query, "\x03SELECT 1");
  std::string prepare = "\x16SELECT ?"s;
  EXPECT_FALSE(rewrite_stmt_id(prepare, 1).has_value());
  std::string short_close = "\x19\x01\x00"s;
  EXPECT_FALSE(rewrite_stmt_id(short_close, 1).has_value());
  EXPECT_FALSE(statement_id_of("").has_value());
}

// ---------------------------------------------------------------- garbage

TEST(MysqlMessages, GarbageNeverCrashes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng() % 4 == 0 ? 0xFE + rng() % 2 : rng());
    const std::uint32_t caps = (i % 2) ? kCapsDeprecateEof : kCaps41;
    (void)parse_ok(junk, caps);
    (void)parse_err(junk, caps);
    (void)parse_eof(junk, caps);
    (void)parse_end_of_rows(junk, caps);
    (void)classify_response(junk);
    (void)classify_row(junk, caps);
    (void)parse_column_definition(junk, (i % 3) ? 0 : kCapturedMariadbCaps);
    (void)parse_text_row(junk, i % 7);
    (void)parse_binary_row(junk, kCapturedTypes);
    (void)parse_stmt_prepare_ok(junk);
    (void)parse_stmt_execute(junk, static_cast<std::uint16_t>(i % 5));
    (void)statement_id_of(junk);
  }
}

}  // namespace
}  // namespace shardgate::mysql
