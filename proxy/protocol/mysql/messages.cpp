#include "proxy/protocol/mysql/messages.h"

#include <bit>
#include <limits>
#include <utility>

namespace shardgate::mysql {
namespace {

constexpr std::size_t kMaxEofPayload = 8;           // an EOF packet is 1, or 5 bytes with 4.1
constexpr std::size_t kColumnFixedFieldsSize = 12;  // charset .. decimals + 2 filler bytes
constexpr std::size_t kSqlStateSize = 5;
constexpr std::size_t kBinaryRowBitmapOffset = 2;
// COM_STMT_EXECUTE flag (MySQL 8.0.23+): a parameter count and names precede the
// values, only when query attributes were negotiated.
constexpr std::uint8_t kParameterCountAvailable = 0x08;
constexpr std::string_view kMariadbLastGtidVariable = "last_gtid";

Error malformed(std::string_view what, const Error& e) {
  return make_error("malformed " + std::string(what) + ": " + e.message());
}

Error wrong_header(std::string_view what, std::uint8_t header) {
  return make_error("not " + std::string(what) + " (header " + std::to_string(header) + ")");
}

void put_fixed(std::string& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

bool bit_set(std::string_view bitmap, std::size_t bit) {
  return (static_cast<unsigned char>(bitmap[bit / 8]) >> (bit % 8)) & 1;
}

void set_bit(std::string& bitmap, std::size_t bit) {
  bitmap[bit / 8] =
      static_cast<char>(static_cast<unsigned char>(bitmap[bit / 8]) | (1u << (bit % 8)));
}

// ---------------------------------------------------------------- session state

Result<std::vector<SessionStateChange>> parse_session_state(std::string_view block) {
  std::vector<SessionStateChange> out;
  PayloadReader r(block);
  while (!r.at_end()) {
    auto type = r.u8();
    auto data = r.lenenc_str();
    if (auto s = r.status(); !s) return s.error();
    SessionStateChange change;
    change.type = *type;
    PayloadReader d(*data);
    switch (*type) {
      case kSessionTrackSystemVariables: {
        auto name = d.lenenc_str();
        auto value = d.lenenc_str();
        if (d.status()) {
          change.name = *name;
          change.value = *value;
        }
        break;
      }
      case kSessionTrackGtids: {
        (void)d.u8();  // encoding specification: 0, the only one defined
        auto value = d.lenenc_str();
        if (value) change.value = *value;
        break;
      }
      case kSessionTrackSchema:
      case kSessionTrackStateChange:
      case kSessionTrackTransactionCharacteristics:
      case kSessionTrackTransactionState: {
        auto value = d.lenenc_str();
        if (value) change.value = *value;
        break;
      }
      default:
        change.value = *data;
        break;
    }
    if (auto s = d.status(); !s) {
      return make_error("session-state entry of type " + std::to_string(*type) + ": " +
                        s.error().message());
    }
    out.push_back(change);
  }
  return out;
}

std::string session_state_entry_data(const SessionStateChange& change) {
  std::string data;
  switch (change.type) {
    case kSessionTrackSystemVariables:
      put_lenenc_str(data, change.name);
      put_lenenc_str(data, change.value);
      break;
    case kSessionTrackGtids:
      put_u8(data, 0);
      put_lenenc_str(data, change.value);
      break;
    case kSessionTrackSchema:
    case kSessionTrackStateChange:
    case kSessionTrackTransactionCharacteristics:
    case kSessionTrackTransactionState:
      put_lenenc_str(data, change.value);
      break;
    default:
      data = change.value;
      break;
  }
  return data;
}

// ---------------------------------------------------------------- binary values

Result<BinaryValue> read_int(PayloadReader& r, std::size_t n, bool is_unsigned) {
  auto b = r.bytes(n);
  if (!b) return b.error();
  const std::uint64_t bits = load_le(b->data(), n);
  if (is_unsigned) return BinaryValue{bits};
  // Sign-extend from n bytes; C++20 defines both the conversion and the shift.
  const unsigned shift = static_cast<unsigned>(64 - 8 * n);
  return BinaryValue{static_cast<std::int64_t>(bits << shift) >> shift};
}

Result<BinaryValue> read_datetime(PayloadReader& r) {
  auto len = r.u8();
  if (!len) return len.error();
  if (*len != 0 && *len != 4 && *len != 7 && *len != 11) {
    return make_error("invalid DATETIME length " + std::to_string(*len));
  }
  auto b = r.bytes(*len);
  if (!b) return b.error();
  const char* p = b->data();
  DateTime v;
  if (*len >= 4) {
    v.year = static_cast<std::uint16_t>(load_le(p, 2));
    v.month = static_cast<std::uint8_t>(p[2]);
    v.day = static_cast<std::uint8_t>(p[3]);
  }
  if (*len >= 7) {
    v.hour = static_cast<std::uint8_t>(p[4]);
    v.minute = static_cast<std::uint8_t>(p[5]);
    v.second = static_cast<std::uint8_t>(p[6]);
  }
  if (*len == 11) v.microsecond = static_cast<std::uint32_t>(load_le(p + 7, 4));
  return BinaryValue{v};
}

Result<BinaryValue> read_time(PayloadReader& r) {
  auto len = r.u8();
  if (!len) return len.error();
  if (*len != 0 && *len != 8 && *len != 12) {
    return make_error("invalid TIME length " + std::to_string(*len));
  }
  auto b = r.bytes(*len);
  if (!b) return b.error();
  const char* p = b->data();
  TimeValue v;
  if (*len >= 8) {
    v.negative = p[0] != 0;
    v.days = static_cast<std::uint32_t>(load_le(p + 1, 4));
    v.hour = static_cast<std::uint8_t>(p[5]);
    v.minute = static_cast<std::uint8_t>(p[6]);
    v.second = static_cast<std::uint8_t>(p[7]);
  }
  if (*len == 12) v.microsecond = static_cast<std::uint32_t>(load_le(p + 8, 4));
  return BinaryValue{v};
}

// Types whose binary value is a lenenc string: DECIMAL, VARCHAR, BIT, and every
// type from JSON (0xF5) up (NEWDECIMAL, ENUM, SET, the blobs, strings, GEOMETRY).
bool is_string_like(std::uint8_t type) {
  return type == kTypeDecimal || type == kTypeVarchar || type == kTypeBit || type >= kTypeJson;
}

Error mismatch(BinaryType type) {
  return make_error("value does not match binary type " + std::to_string(type.type));
}

Result<void> write_int(std::string& out, std::size_t n, BinaryType type, const BinaryValue& v) {
  const unsigned bits = static_cast<unsigned>(8 * n);
  std::uint64_t raw = 0;
  if (const auto* s = std::get_if<std::int64_t>(&v)) {
    if (type.is_unsigned) {
      if (*s < 0 || (bits < 64 && static_cast<std::uint64_t>(*s) >> bits != 0)) {
        return make_error("integer out of range for its unsigned type");
      }
    } else if (bits < 64) {
      const std::int64_t limit = std::int64_t{1} << (bits - 1);
      if (*s < -limit || *s >= limit) return make_error("integer out of range for its type");
    }
    raw = static_cast<std::uint64_t>(*s);
  } else if (const auto* u = std::get_if<std::uint64_t>(&v)) {
    const std::uint64_t max =
        bits == 64 ? std::numeric_limits<std::uint64_t>::max() : (std::uint64_t{1} << bits) - 1;
    if (*u > (type.is_unsigned ? max : max >> 1)) {
      return make_error("integer out of range for its type");
    }
    raw = *u;
  } else {
    return mismatch(type);
  }
  put_fixed(out, raw, n);
  return {};
}

void write_datetime(std::string& out, const DateTime& v) {
  std::uint8_t len = 0;
  if (v.microsecond != 0) {
    len = 11;
  } else if (v.hour != 0 || v.minute != 0 || v.second != 0) {
    len = 7;
  } else if (v.year != 0 || v.month != 0 || v.day != 0) {
    len = 4;
  }
  put_u8(out, len);
  if (len >= 4) {
    put_u16(out, v.year);
    put_u8(out, v.month);
    put_u8(out, v.day);
  }
  if (len >= 7) {
    put_u8(out, v.hour);
    put_u8(out, v.minute);
    put_u8(out, v.second);
  }
  if (len == 11) put_u32(out, v.microsecond);
}

void write_time(std::string& out, const TimeValue& v) {
  std::uint8_t len = 0;
  if (v.microsecond != 0) {
    len = 12;
  } else if (v.negative || v.days != 0 || v.hour != 0 || v.minute != 0 || v.second != 0) {
    len = 8;
  }
  put_u8(out, len);
  if (len >= 8) {
    put_u8(out, v.negative ? 1 : 0);
    put_u32(out, v.days);
    put_u8(out, v.hour);
    put_u8(out, v.minute);
    put_u8(out, v.second);
  }
  if (len == 12) put_u32(out, v.microsecond);
}

bool is_stmt_id_command(std::uint8_t command) {
  return command == kComStmtExecute || command == kComStmtSendLongData ||
         command == kComStmtClose || command == kComStmtReset || command == kComStmtFetch;
}

}  // namespace

// ---------------------------------------------------------------- OK

Result<OkPacket> parse_ok(std::string_view payload, std::uint32_t capabilities) {
  PayloadReader r(payload);
  auto header = r.u8();
  if (!header) return make_error("empty OK packet");
  if (*header != kOkHeader && *header != kEofHeader) return wrong_header("an OK packet", *header);
  OkPacket ok;
  ok.header = *header;
  auto affected = r.lenenc_int();
  auto last_id = r.lenenc_int();
  if (auto s = r.status(); !s) return malformed("OK packet", s.error());
  ok.affected_rows = *affected;
  ok.last_insert_id = *last_id;
  if (capabilities & kClientProtocol41) {
    auto status = r.u16();
    auto warnings = r.u16();
    if (auto s = r.status(); !s) return malformed("OK packet", s.error());
    ok.status_flags = *status;
    ok.warnings = *warnings;
  } else if (capabilities & kClientTransactions) {
    auto status = r.u16();
    if (!status) return malformed("OK packet", status.error());
    ok.status_flags = *status;
  }
  if ((capabilities & kClientSessionTrack) == 0) {
    ok.info = r.rest();
    return ok;
  }
  // Servers leave the info out when it is empty and nothing changed.
  if (r.at_end()) return ok;
  auto info = r.lenenc_str();
  if (!info) return malformed("OK packet info", info.error());
  ok.info = *info;
  if ((ok.status_flags & kServerSessionStateChanged) && !r.at_end()) {
    auto block = r.lenenc_str();
    if (!block) return malformed("OK packet session state", block.error());
    auto changes = parse_session_state(*block);
    if (!changes) return malformed("OK packet session state", changes.error());
    ok.session_state = std::move(*changes);
  }
  return ok;
}

std::string build_ok(const OkPacket& ok, std::uint32_t capabilities) {
  std::string out;
  put_u8(out, ok.header);
  put_lenenc_int(out, ok.affected_rows);
  put_lenenc_int(out, ok.last_insert_id);
  if (capabilities & kClientProtocol41) {
    put_u16(out, ok.status_flags);
    put_u16(out, ok.warnings);
  } else if (capabilities & kClientTransactions) {
    put_u16(out, ok.status_flags);
  }
  if ((capabilities & kClientSessionTrack) == 0) {
    out.append(ok.info);
    return out;
  }
  const bool changed = (ok.status_flags & kServerSessionStateChanged) != 0;
  if (changed || !ok.info.empty()) put_lenenc_str(out, ok.info);
  if (changed) {
    std::string block;
    for (const auto& change : ok.session_state) {
      put_u8(block, change.type);
      put_lenenc_str(block, session_state_entry_data(change));
    }
    put_lenenc_str(out, block);
  }
  return out;
}

std::optional<std::string_view> produced_gtid(const OkPacket& ok) {
  for (const auto& change : ok.session_state) {
    if (change.value.empty()) continue;
    if (change.type == kSessionTrackGtids) return change.value;
    if (change.type == kSessionTrackSystemVariables && change.name == kMariadbLastGtidVariable) {
      return change.value;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- ERR

Result<ErrPacket> parse_err(std::string_view payload, std::uint32_t capabilities) {
  PayloadReader r(payload);
  auto header = r.u8();
  if (!header) return make_error("empty ERR packet");
  if (*header != kErrHeader) return wrong_header("an ERR packet", *header);
  auto code = r.u16();
  if (!code) return malformed("ERR packet", code.error());
  ErrPacket err;
  err.code = *code;
  if ((capabilities & kClientProtocol41) && r.peek() == std::uint8_t{'#'}) {
    (void)r.skip(1);
    auto state = r.bytes(kSqlStateSize);
    if (!state) return malformed("ERR packet SQLSTATE", state.error());
    err.sqlstate = *state;
  }
  err.message = r.rest();
  return err;
}

std::string build_err(const ErrPacket& err, std::uint32_t capabilities) {
  std::string out;
  put_u8(out, kErrHeader);
  put_u16(out, err.code);
  if (capabilities & kClientProtocol41) {
    out.push_back('#');
    out.append(err.sqlstate.size() == kSqlStateSize ? err.sqlstate : "HY000");
  }
  out.append(err.message);
  return out;
}

std::string build_err(ErrorCode code, std::string_view message, std::uint32_t capabilities) {
  return build_err(ErrPacket{code.code, code.sqlstate, message}, capabilities);
}

// ---------------------------------------------------------------- EOF

Result<EofPacket> parse_eof(std::string_view payload, std::uint32_t capabilities) {
  PayloadReader r(payload);
  auto header = r.u8();
  if (!header) return make_error("empty EOF packet");
  if (*header != kEofHeader) return wrong_header("an EOF packet", *header);
  if (payload.size() > kMaxEofPayload) {
    return make_error("not an EOF packet (" + std::to_string(payload.size()) + " bytes)");
  }
  EofPacket eof;
  if (capabilities & kClientProtocol41) {
    auto warnings = r.u16();
    auto status = r.u16();
    if (auto s = r.status(); !s) return malformed("EOF packet", s.error());
    eof.warnings = *warnings;
    eof.status_flags = *status;
  }
  return eof;
}

std::string build_eof(const EofPacket& eof, std::uint32_t capabilities) {
  std::string out;
  put_u8(out, kEofHeader);
  if (capabilities & kClientProtocol41) {
    put_u16(out, eof.warnings);
    put_u16(out, eof.status_flags);
  }
  return out;
}

Result<OkPacket> parse_end_of_rows(std::string_view payload, std::uint32_t capabilities) {
  if (capabilities & kClientDeprecateEof) {
    auto ok = parse_ok(payload, capabilities);
    if (ok && ok->header != kEofHeader) return wrong_header("an end-of-rows OK packet", ok->header);
    return ok;
  }
  auto eof = parse_eof(payload, capabilities);
  if (!eof) return eof.error();
  OkPacket ok;
  ok.header = kEofHeader;
  ok.status_flags = eof->status_flags;
  ok.warnings = eof->warnings;
  return ok;
}

std::string build_end_of_rows(std::uint16_t status_flags, std::uint16_t warnings,
                              std::uint32_t capabilities) {
  if (capabilities & kClientDeprecateEof) {
    OkPacket ok;
    ok.header = kEofHeader;
    ok.status_flags = status_flags;
    ok.warnings = warnings;
    return build_ok(ok, capabilities);
  }
  return build_eof(EofPacket{warnings, status_flags}, capabilities);
}

// ---------------------------------------------------------------- classifiers

Result<ResponseKind> classify_response(std::string_view payload) {
  if (payload.empty()) return make_error("empty response packet");
  switch (static_cast<std::uint8_t>(payload[0])) {
    case kOkHeader:
      return ResponseKind::Ok;
    case kErrHeader:
      return ResponseKind::Err;
    case kLocalInfileHeader:
      return ResponseKind::LocalInfile;
    case kEofHeader:
      // 0xFE is also the prefix of an 8-byte column count.
      return payload.size() <= kMaxEofPayload ? ResponseKind::Eof : ResponseKind::ResultSet;
    default:
      return ResponseKind::ResultSet;
  }
}

Result<RowKind> classify_row(std::string_view payload, std::uint32_t capabilities) {
  if (payload.empty()) return make_error("empty row packet");
  switch (static_cast<std::uint8_t>(payload[0])) {
    case kErrHeader:
      return RowKind::Err;
    case kEofHeader: {
      const bool end = (capabilities & kClientDeprecateEof) ? payload.size() < kMaxPacketPayload
                                                            : payload.size() <= kMaxEofPayload;
      return end ? RowKind::End : RowKind::Row;
    }
    default:
      return RowKind::Row;
  }
}

// ---------------------------------------------------------------- column definitions

Result<ColumnDefinition> parse_column_definition(std::string_view payload,
                                                 std::uint32_t mariadb_capabilities) {
  PayloadReader r(payload);
  ColumnDefinition c;
  auto catalog = r.lenenc_str();
  auto schema = r.lenenc_str();
  auto table = r.lenenc_str();
  auto org_table = r.lenenc_str();
  auto name = r.lenenc_str();
  auto org_name = r.lenenc_str();
  if (mariadb_capabilities & kMariadbClientExtendedMetadata) {
    auto extended = r.lenenc_str();
    if (extended) c.extended_metadata = *extended;
  }
  auto fixed_size = r.lenenc_int();
  if (auto s = r.status(); !s) return malformed("column definition", s.error());
  if (*fixed_size < kColumnFixedFieldsSize || *fixed_size > r.remaining()) {
    return make_error("malformed column definition: fixed-fields length " +
                      std::to_string(*fixed_size));
  }
  PayloadReader f(*r.bytes(static_cast<std::size_t>(*fixed_size)));
  auto charset = f.u16();
  auto length = f.u32();
  auto type = f.u8();
  auto flags = f.u16();
  auto decimals = f.u8();
  if (auto s = f.status(); !s) return malformed("column definition", s.error());
  c.catalog = *catalog;
  c.schema = *schema;
  c.table = *table;
  c.org_table = *org_table;
  c.name = *name;
  c.org_name = *org_name;
  c.charset = *charset;
  c.column_length = *length;
  c.type = *type;
  c.flags = *flags;
  c.decimals = *decimals;
  return c;
}

std::string build_column_definition(const ColumnDefinition& c, std::uint32_t mariadb_capabilities) {
  std::string out;
  put_lenenc_str(out, c.catalog);
  put_lenenc_str(out, c.schema);
  put_lenenc_str(out, c.table);
  put_lenenc_str(out, c.org_table);
  put_lenenc_str(out, c.name);
  put_lenenc_str(out, c.org_name);
  if (mariadb_capabilities & kMariadbClientExtendedMetadata) {
    put_lenenc_str(out, c.extended_metadata);
  }
  put_lenenc_int(out, kColumnFixedFieldsSize);
  put_u16(out, c.charset);
  put_u32(out, c.column_length);
  put_u8(out, c.type);
  put_u16(out, c.flags);
  put_u8(out, c.decimals);
  put_u16(out, 0);  // filler
  return out;
}

// ---------------------------------------------------------------- text rows

Result<TextRow> parse_text_row(std::string_view payload, std::size_t columns) {
  PayloadReader r(payload);
  TextRow row;
  row.reserve(columns);
  for (std::size_t i = 0; i < columns; ++i) {
    auto cell = r.lenenc_str_or_null();
    if (!cell)
      return make_error("malformed text row, column " + std::to_string(i) + ": " +
                        cell.error().message());
    row.push_back(*cell);
  }
  if (!r.at_end()) {
    return make_error("text row has " + std::to_string(r.remaining()) + " bytes after its " +
                      std::to_string(columns) + " columns");
  }
  return row;
}

std::string build_text_row(std::span<const std::optional<std::string_view>> cells) {
  std::string out;
  for (const auto& cell : cells) {
    if (cell) {
      put_lenenc_str(out, *cell);
    } else {
      put_u8(out, kLocalInfileHeader);  // 0xFB is NULL here
    }
  }
  return out;
}

// ---------------------------------------------------------------- binary rows

BinaryType binary_type_of(const ColumnDefinition& column) {
  return BinaryType{column.type, (column.flags & kFlagUnsigned) != 0};
}

Result<BinaryValue> read_binary_value(PayloadReader& r, BinaryType type) {
  switch (type.type) {
    case kTypeTiny:
      return read_int(r, 1, type.is_unsigned);
    case kTypeShort:
    case kTypeYear:
      return read_int(r, 2, type.is_unsigned);
    case kTypeLong:
    case kTypeInt24:
      return read_int(r, 4, type.is_unsigned);
    case kTypeLongLong:
      return read_int(r, 8, type.is_unsigned);
    case kTypeFloat: {
      auto v = r.u32();
      if (!v) return v.error();
      return BinaryValue{std::bit_cast<float>(*v)};
    }
    case kTypeDouble: {
      auto v = r.u64();
      if (!v) return v.error();
      return BinaryValue{std::bit_cast<double>(*v)};
    }
    case kTypeDate:
    case kTypeNewDate:
    case kTypeDateTime:
    case kTypeTimestamp:
      return read_datetime(r);
    case kTypeTime:
      return read_time(r);
    case kTypeNull:
      return BinaryValue{};
    default:
      break;
  }
  if (!is_string_like(type.type)) {
    return make_error("unsupported binary type " + std::to_string(type.type));
  }
  auto s = r.lenenc_str();
  if (!s) return s.error();
  return BinaryValue{*s};
}

Result<void> write_binary_value(std::string& out, BinaryType type, const BinaryValue& value) {
  if (std::holds_alternative<std::monostate>(value)) {
    return make_error("NULL has no binary value: it goes in the NULL bitmap");
  }
  switch (type.type) {
    case kTypeTiny:
      return write_int(out, 1, type, value);
    case kTypeShort:
    case kTypeYear:
      return write_int(out, 2, type, value);
    case kTypeLong:
    case kTypeInt24:
      return write_int(out, 4, type, value);
    case kTypeLongLong:
      return write_int(out, 8, type, value);
    case kTypeFloat:
      if (const auto* f = std::get_if<float>(&value)) {
        put_u32(out, std::bit_cast<std::uint32_t>(*f));
        return {};
      }
      return mismatch(type);
    case kTypeDouble:
      if (const auto* d = std::get_if<double>(&value)) {
        put_u64(out, std::bit_cast<std::uint64_t>(*d));
        return {};
      }
      return mismatch(type);
    case kTypeDate:
    case kTypeNewDate:
    case kTypeDateTime:
    case kTypeTimestamp:
      if (const auto* dt = std::get_if<DateTime>(&value)) {
        write_datetime(out, *dt);
        return {};
      }
      return mismatch(type);
    case kTypeTime:
      if (const auto* t = std::get_if<TimeValue>(&value)) {
        write_time(out, *t);
        return {};
      }
      return mismatch(type);
    default:
      break;
  }
  const auto* s = std::get_if<std::string_view>(&value);
  if (!is_string_like(type.type) || s == nullptr) return mismatch(type);
  put_lenenc_str(out, *s);
  return {};
}

Result<BinaryRow> parse_binary_row(std::string_view payload, std::span<const BinaryType> types) {
  PayloadReader r(payload);
  auto header = r.u8();
  if (!header) return make_error("empty binary row");
  if (*header != kOkHeader) return wrong_header("a binary row", *header);
  auto bitmap = r.bytes((types.size() + 7 + kBinaryRowBitmapOffset) / 8);
  if (!bitmap) return malformed("binary row NULL bitmap", bitmap.error());
  BinaryRow row;
  row.reserve(types.size());
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (bit_set(*bitmap, i + kBinaryRowBitmapOffset)) {
      row.emplace_back();
      continue;
    }
    auto value = read_binary_value(r, types[i]);
    if (!value) {
      return make_error("malformed binary row, column " + std::to_string(i) + ": " +
                        value.error().message());
    }
    row.push_back(*value);
  }
  if (!r.at_end()) {
    return make_error("binary row has " + std::to_string(r.remaining()) + " bytes after its " +
                      std::to_string(types.size()) + " columns");
  }
  return row;
}

Result<std::string> build_binary_row(std::span<const BinaryType> types,
                                     std::span<const BinaryValue> values) {
  if (types.size() != values.size()) {
    return make_error("binary row has " + std::to_string(values.size()) + " values for " +
                      std::to_string(types.size()) + " columns");
  }
  std::string bitmap((types.size() + 7 + kBinaryRowBitmapOffset) / 8, '\0');
  std::string body;
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (std::holds_alternative<std::monostate>(values[i])) {
      set_bit(bitmap, i + kBinaryRowBitmapOffset);
      continue;
    }
    auto written = write_binary_value(body, types[i], values[i]);
    if (!written)
      return make_error("column " + std::to_string(i) + ": " + written.error().message());
  }
  std::string out;
  put_u8(out, kOkHeader);
  out.append(bitmap);
  out.append(body);
  return out;
}

// ---------------------------------------------------------------- prepared statements

Result<StmtPrepareOk> parse_stmt_prepare_ok(std::string_view payload) {
  PayloadReader r(payload);
  auto header = r.u8();
  if (!header) return make_error("empty COM_STMT_PREPARE response");
  if (*header != kOkHeader) return wrong_header("a COM_STMT_PREPARE OK", *header);
  auto id = r.u32();
  auto columns = r.u16();
  auto params = r.u16();
  auto reserved = r.u8();
  if (auto s = r.status(); !s) return malformed("COM_STMT_PREPARE OK", s.error());
  (void)reserved;
  StmtPrepareOk ok{*id, *columns, *params, 0};
  // The warning count arrived with 4.1.1; MySQL 8 may append a metadata flag.
  if (r.remaining() >= 2) ok.warnings = *r.u16();
  return ok;
}

std::string build_stmt_prepare_ok(const StmtPrepareOk& ok) {
  std::string out;
  put_u8(out, kOkHeader);
  put_u32(out, ok.statement_id);
  put_u16(out, ok.num_columns);
  put_u16(out, ok.num_params);
  put_u8(out, 0);  // reserved
  put_u16(out, ok.warnings);
  return out;
}

Result<StmtExecute> parse_stmt_execute(std::string_view payload, std::uint16_t num_params) {
  PayloadReader r(payload);
  auto command = r.u8();
  if (!command) return make_error("empty COM_STMT_EXECUTE");
  if (*command != kComStmtExecute) return wrong_header("COM_STMT_EXECUTE", *command);
  auto id = r.u32();
  auto flags = r.u8();
  auto iterations = r.u32();
  if (auto s = r.status(); !s) return malformed("COM_STMT_EXECUTE", s.error());
  if (*flags & kParameterCountAvailable) {
    return make_error("COM_STMT_EXECUTE with query attributes is not supported");
  }
  StmtExecute e;
  e.statement_id = *id;
  e.flags = *flags;
  e.iteration_count = *iterations;
  if (num_params > 0) {
    auto bitmap = r.bytes((std::size_t{num_params} + 7) / 8);
    auto bound = r.u8();
    if (auto s = r.status(); !s) return malformed("COM_STMT_EXECUTE", s.error());
    if (*bound > 1) {
      return make_error("COM_STMT_EXECUTE new-params-bound flag is " + std::to_string(*bound));
    }
    e.null_bitmap = *bitmap;
    e.new_params_bound = *bound == 1;
    if (e.new_params_bound) {
      auto types = r.bytes(std::size_t{num_params} * 2);
      if (!types) return malformed("COM_STMT_EXECUTE parameter types", types.error());
      e.param_types.reserve(num_params);
      for (std::size_t i = 0; i < num_params; ++i) {
        const auto flag = static_cast<std::uint8_t>((*types)[2 * i + 1]);
        e.param_types.push_back(
            BinaryType{static_cast<std::uint8_t>((*types)[2 * i]), (flag & kParamUnsigned) != 0});
      }
    }
  }
  e.values = r.rest();
  return e;
}

Result<std::string> build_stmt_execute(std::uint32_t statement_id, std::uint8_t flags,
                                       std::span<const BinaryType> types,
                                       std::span<const BinaryValue> values) {
  if (types.size() != values.size()) {
    return make_error("COM_STMT_EXECUTE has " + std::to_string(values.size()) + " values for " +
                      std::to_string(types.size()) + " parameters");
  }
  if (types.size() > std::numeric_limits<std::uint16_t>::max()) {
    return make_error("too many parameters for COM_STMT_EXECUTE");
  }
  std::string out;
  put_u8(out, kComStmtExecute);
  put_u32(out, statement_id);
  put_u8(out, flags);
  put_u32(out, 1);  // iteration count: always 1
  if (types.empty()) return out;
  std::string bitmap((types.size() + 7) / 8, '\0');
  std::string body;
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (std::holds_alternative<std::monostate>(values[i])) {
      set_bit(bitmap, i);
      continue;
    }
    auto written = write_binary_value(body, types[i], values[i]);
    if (!written) {
      return make_error("parameter " + std::to_string(i) + ": " + written.error().message());
    }
  }
  out.append(bitmap);
  put_u8(out, 1);  // new params bound
  for (const auto& t : types) {
    put_u8(out, t.type);
    put_u8(out, t.is_unsigned ? kParamUnsigned : 0);
  }
  out.append(body);
  return out;
}

Result<std::uint32_t> statement_id_of(std::string_view payload) {
  if (payload.size() < 5 || !is_stmt_id_command(static_cast<std::uint8_t>(payload[0]))) {
    return make_error("not a statement command with a statement id");
  }
  return static_cast<std::uint32_t>(load_le(payload.data() + 1, 4));
}

Result<void> rewrite_stmt_id(std::string& payload, std::uint32_t statement_id) {
  auto current = statement_id_of(payload);
  if (!current) return current.error();
  for (std::size_t i = 0; i < 4; ++i) {
    payload[1 + i] = static_cast<char>((statement_id >> (8 * i)) & 0xFF);
  }
  return {};
}

}  // namespace shardgate::mysql
