#include "proxy/protocol/postgres/messages.h"

#include "proxy/protocol/postgres/frame.h"

namespace shardgate::pg {

std::string_view BodyReader::cstr() {
  const auto nul = body_.find('\0', pos_);
  if (failed_ || nul == std::string_view::npos) {
    failed_ = true;
    return {};
  }
  auto s = body_.substr(pos_, nul - pos_);
  pos_ = nul + 1;
  return s;
}

std::string_view BodyReader::bytes(std::size_t n) {
  if (failed_ || body_.size() - pos_ < n) {
    failed_ = true;
    return {};
  }
  auto s = body_.substr(pos_, n);
  pos_ += n;
  return s;
}

std::uint32_t BodyReader::u32() {
  auto b = bytes(4);
  return failed_ ? 0 : read_u32(b.data());
}

std::uint16_t BodyReader::u16() {
  auto b = bytes(2);
  return failed_ ? 0 : read_u16(b.data());
}

std::uint8_t BodyReader::u8() {
  auto b = bytes(1);
  return failed_ ? 0 : static_cast<std::uint8_t>(b[0]);
}

std::string_view BodyReader::rest() {
  if (failed_) return {};
  auto s = body_.substr(pos_);
  pos_ = body_.size();
  return s;
}

Encoder& Encoder::begin(char type) {
  out_.push_back(type);
  start_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

Encoder& Encoder::begin_untyped() {
  start_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

Encoder& Encoder::u32(std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out_.append(b, 4);
  return *this;
}

Encoder& Encoder::u16(std::uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out_.append(b, 2);
  return *this;
}

Encoder& Encoder::u8(std::uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

Encoder& Encoder::cstr(std::string_view s) {
  out_.append(s);
  out_.push_back('\0');
  return *this;
}

Encoder& Encoder::raw(std::string_view s) {
  out_.append(s);
  return *this;
}

Encoder& Encoder::end() {
  const auto len = static_cast<std::uint32_t>(out_.size() - start_);
  out_[start_] = static_cast<char>(len >> 24);
  out_[start_ + 1] = static_cast<char>(len >> 16);
  out_[start_ + 2] = static_cast<char>(len >> 8);
  out_[start_ + 3] = static_cast<char>(len);
  return *this;
}

std::optional<Params> parse_startup_params(std::string_view body) {
  Params params;
  BodyReader r(body);
  for (;;) {
    auto name = r.cstr();
    if (r.failed()) return std::nullopt;
    if (name.empty()) break;
    auto value = r.cstr();
    if (r.failed()) return std::nullopt;
    params.emplace_back(std::string(name), std::string(value));
  }
  if (!r.at_end()) return std::nullopt;
  return params;
}

std::optional<ParseMessage> parse_parse(std::string_view body) {
  BodyReader r(body);
  ParseMessage m;
  m.name = r.cstr();
  m.query = r.cstr();
  m.param_types = r.rest();
  if (r.failed() || m.param_types.size() < 2) return std::nullopt;
  const std::size_t n = read_u16(m.param_types.data());
  if (m.param_types.size() != 2 + 4 * n) return std::nullopt;
  return m;
}

std::optional<BindHead> parse_bind(std::string_view body) {
  BodyReader r(body);
  BindHead b;
  b.portal = r.cstr();
  b.statement = r.cstr();
  b.rest = r.rest();
  if (r.failed()) return std::nullopt;
  return b;
}

bool parse_bind_params(std::string_view rest, std::vector<BindParam>& out) {
  out.clear();
  BodyReader r(rest);
  const std::uint16_t nformats = r.u16();
  std::vector<std::uint16_t> formats;
  for (std::uint16_t i = 0; i < nformats && !r.failed(); ++i) formats.push_back(r.u16());
  const std::uint16_t nparams = r.u16();
  // Zero format codes: all text; one: it applies to all; else one per parameter.
  if (r.failed() || (nformats > 1 && nformats != nparams)) return false;
  for (std::uint16_t i = 0; i < nparams; ++i) {
    BindParam p;
    const std::uint16_t format = nformats == 0 ? 0 : formats[nformats == 1 ? 0 : i];
    if (format > 1) return false;
    p.binary = format == 1;
    const std::uint32_t len = r.u32();
    if (r.failed()) return false;
    if (len == 0xffffffffu) {
      p.null = true;
    } else {
      p.value = r.bytes(len);
      if (r.failed()) return false;
    }
    out.push_back(p);
  }
  return true;
}

bool bind_results_all_text(std::string_view rest) {
  BodyReader r(rest);
  const std::uint16_t nformats = r.u16();
  for (std::uint16_t i = 0; i < nformats && !r.failed(); ++i) r.u16();
  const std::uint16_t nparams = r.u16();
  for (std::uint16_t i = 0; i < nparams && !r.failed(); ++i) {
    const std::uint32_t len = r.u32();
    if (len != 0xffffffffu) r.bytes(len);
  }
  const std::uint16_t nresults = r.u16();
  for (std::uint16_t i = 0; i < nresults && !r.failed(); ++i)
    if (r.u16() != 0) return false;
  return !r.failed() && r.at_end();
}

std::optional<ExecuteMessage> parse_execute(std::string_view body) {
  BodyReader r(body);
  ExecuteMessage e;
  e.portal = r.cstr();
  e.max_rows = r.u32();
  if (r.failed() || !r.at_end()) return std::nullopt;
  return e;
}

std::string execute_message(std::string_view portal, std::uint32_t max_rows) {
  Encoder e;
  e.begin('E').cstr(portal).u32(max_rows).end();
  return e.take();
}

std::optional<DescribeOrClose> parse_describe_or_close(std::string_view body) {
  BodyReader r(body);
  DescribeOrClose d;
  d.kind = static_cast<char>(r.u8());
  d.name = r.cstr();
  if (r.failed() || !r.at_end() || (d.kind != 'S' && d.kind != 'P')) return std::nullopt;
  return d;
}

std::optional<std::vector<FieldDescription>> parse_row_description(std::string_view body) {
  BodyReader r(body);
  const std::uint16_t n = r.u16();
  std::vector<FieldDescription> fields;
  for (std::uint16_t i = 0; i < n && !r.failed(); ++i) {
    FieldDescription f;
    f.name = std::string(r.cstr());
    f.table_oid = r.u32();
    f.column = r.u16();
    f.type_oid = r.u32();
    f.type_size = static_cast<std::int16_t>(r.u16());
    f.type_modifier = static_cast<std::int32_t>(r.u32());
    f.format = r.u16();
    fields.push_back(std::move(f));
  }
  if (r.failed() || !r.at_end()) return std::nullopt;
  return fields;
}

std::string row_description(const std::vector<FieldDescription>& fields) {
  Encoder e;
  e.begin('T').u16(static_cast<std::uint16_t>(fields.size()));
  for (const auto& f : fields) {
    e.cstr(f.name).u32(f.table_oid).u16(f.column).u32(f.type_oid);
    e.u16(static_cast<std::uint16_t>(f.type_size)).u32(static_cast<std::uint32_t>(f.type_modifier));
    e.u16(f.format);
  }
  e.end();
  return e.take();
}

bool parse_data_row(std::string_view body, DataRowCells& out) {
  out.clear();
  BodyReader r(body);
  const std::uint16_t n = r.u16();
  for (std::uint16_t i = 0; i < n && !r.failed(); ++i) {
    const std::uint32_t len = r.u32();
    if (len == 0xffffffffu) {
      out.emplace_back(std::nullopt);
    } else {
      out.emplace_back(r.bytes(len));
    }
  }
  return !r.failed() && r.at_end();
}

void append_data_row(std::string& out, const std::vector<std::optional<std::string>>& cells) {
  std::size_t size = 4 + 2;
  for (const auto& c : cells) size += 4 + (c ? c->size() : 0);
  out.reserve(out.size() + 1 + size);
  auto u32 = [&out](std::uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  out.push_back('D');
  u32(static_cast<std::uint32_t>(size));
  out.push_back(static_cast<char>((cells.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(cells.size() & 0xff));
  for (const auto& c : cells) {
    if (!c) {
      u32(0xffffffffu);
      continue;
    }
    u32(static_cast<std::uint32_t>(c->size()));
    out += *c;
  }
}

ErrorFields parse_error_fields(std::string_view body) {
  ErrorFields f;
  BodyReader r(body);
  while (!r.failed() && !r.at_end()) {
    const char code = static_cast<char>(r.u8());
    if (code == '\0') break;
    auto value = r.cstr();
    switch (code) {
      case 'S':
        f.severity = value;
        break;
      case 'C':
        f.sqlstate = value;
        break;
      case 'M':
        f.message = value;
        break;
      case 'D':
        f.detail = value;
        break;
      default:
        break;
    }
  }
  return f;
}

std::string error_response(std::string_view sqlstate, std::string_view message,
                           std::string_view severity) {
  Encoder e;
  e.begin('E').u8('S').cstr(severity).u8('V').cstr(severity).u8('C').cstr(sqlstate);
  e.u8('M').cstr(message).u8(0).end();
  return e.take();
}

std::string ready_for_query(char status) {
  Encoder e;
  e.begin('Z').u8(static_cast<std::uint8_t>(status)).end();
  return e.take();
}

std::string command_complete(std::string_view tag) {
  Encoder e;
  e.begin('C').cstr(tag).end();
  return e.take();
}

std::string parameter_status(std::string_view name, std::string_view value) {
  Encoder e;
  e.begin('S').cstr(name).cstr(value).end();
  return e.take();
}

std::string backend_key_data(std::uint32_t pid, std::uint32_t key) {
  Encoder e;
  e.begin('K').u32(pid).u32(key).end();
  return e.take();
}

std::string auth_request(std::uint32_t code, std::string_view data) {
  Encoder e;
  e.begin('R').u32(code).raw(data).end();
  return e.take();
}

std::string startup_message(const Params& params) {
  Encoder e;
  e.begin_untyped().u32(kProtocolVersion3);
  for (const auto& [k, v] : params) e.cstr(k).cstr(v);
  e.u8(0).end();
  return e.take();
}

std::string cancel_request(std::uint32_t pid, std::uint32_t key) {
  Encoder e;
  e.begin_untyped().u32(kCancelRequestCode).u32(pid).u32(key).end();
  return e.take();
}

std::string query_message(std::string_view sql) {
  Encoder e;
  e.begin('Q').cstr(sql).end();
  return e.take();
}

std::string parse_message(std::string_view name, std::string_view query,
                          std::string_view param_types) {
  Encoder e;
  e.begin('P').cstr(name).cstr(query).raw(param_types).end();
  return e.take();
}

std::string bind_message(std::string_view portal, std::string_view statement,
                         std::string_view rest) {
  Encoder e;
  e.begin('B').cstr(portal).cstr(statement).raw(rest).end();
  return e.take();
}

std::string describe_or_close_message(char type, char kind, std::string_view name) {
  Encoder e;
  e.begin(type).u8(static_cast<std::uint8_t>(kind)).cstr(name).end();
  return e.take();
}

std::string password_message(std::string_view password) {
  Encoder e;
  e.begin('p').cstr(password).end();
  return e.take();
}

std::string sasl_initial_response(std::string_view mechanism, std::string_view data) {
  Encoder e;
  e.begin('p').cstr(mechanism).u32(static_cast<std::uint32_t>(data.size())).raw(data).end();
  return e.take();
}

std::string sasl_response(std::string_view data) {
  Encoder e;
  e.begin('p').raw(data).end();
  return e.take();
}

std::string simple_message(char type) {
  Encoder e;
  e.begin(type).end();
  return e.take();
}

}  // namespace shardgate::pg
