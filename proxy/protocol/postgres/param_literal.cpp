#include "proxy/protocol/postgres/param_literal.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace shardgate::pg {

namespace {

// Built-in types a literal can be cast to by name.
const char* type_name(std::uint32_t oid) {
  switch (oid) {
    case 16:
      return "bool";
    case 17:
      return "bytea";
    case 18:
      return "\"char\"";
    case 19:
      return "name";
    case 20:
      return "int8";
    case 21:
      return "int2";
    case 23:
      return "int4";
    case 25:
      return "text";
    case 26:
      return "oid";
    case 114:
      return "json";
    case 700:
      return "float4";
    case 701:
      return "float8";
    case 1042:
      return "bpchar";
    case 1043:
      return "varchar";
    case 1082:
      return "date";
    case 1083:
      return "time";
    case 1114:
      return "timestamp";
    case 1184:
      return "timestamptz";
    case 1186:
      return "interval";
    case 1700:
      return "numeric";
    case 2950:
      return "uuid";
    case 3802:
      return "jsonb";
    default:
      return nullptr;
  }
}

// '..' reads the same whatever standard_conforming_strings says as long as
// it holds no backslash, and the router reads a sharding key from it; a
// value with a backslash needs E'..'.
std::string escaped(std::string_view text) {
  std::string out = text.find('\\') == std::string_view::npos ? "'" : "E'";
  out.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '\'')
      out += "''";
    else if (c == '\\')
      out += "\\\\";
    else
      out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::uint64_t big_endian(std::string_view bytes) {
  std::uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

template <typename F>
std::string floating(F value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;  // 64 bytes hold any shortest form
  return std::string(buf, end);
}

// A binary-format value as the text the type's input function reads.
Result<std::string> binary_as_text(std::string_view v, std::uint32_t oid) {
  auto wrong_size = [&] {
    return make_error("a binary " + std::string(type_name(oid) ? type_name(oid) : "value") +
                      " parameter of " + std::to_string(v.size()) + " bytes");
  };
  switch (oid) {
    case 16:
      if (v.size() != 1) return wrong_size();
      return std::string(v[0] ? "true" : "false");
    case 21:
      if (v.size() != 2) return wrong_size();
      return std::to_string(static_cast<std::int16_t>(big_endian(v)));
    case 23:
      if (v.size() != 4) return wrong_size();
      return std::to_string(static_cast<std::int32_t>(big_endian(v)));
    case 20:
      if (v.size() != 8) return wrong_size();
      return std::to_string(static_cast<std::int64_t>(big_endian(v)));
    case 26:
      if (v.size() != 4) return wrong_size();
      return std::to_string(static_cast<std::uint32_t>(big_endian(v)));
    case 700:
      if (v.size() != 4) return wrong_size();
      return floating(std::bit_cast<float>(static_cast<std::uint32_t>(big_endian(v))));
    case 701:
      if (v.size() != 8) return wrong_size();
      return floating(std::bit_cast<double>(big_endian(v)));
    case 17: {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string out = "\\x";
      for (unsigned char c : v) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
      }
      return out;
    }
    case 25:
    case 1042:
    case 1043:
    case 19:
    case 114:
      return std::string(v);
    case 3802:  // a version byte, then the text
      if (v.empty() || v[0] != 1)
        return make_error("a binary jsonb parameter of an unknown version");
      return std::string(v.substr(1));
    case 2950: {
      if (v.size() != 16) return wrong_size();
      std::string out;
      char buf[4];
      for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(v[i]));
        out += buf;
      }
      return out;
    }
    default:
      return make_error("a binary-format parameter of type OID " + std::to_string(oid) +
                        " cannot be written into the statement: bind it in text format");
  }
}

}  // namespace

Result<std::string> param_literal(const BindParam& param, std::uint32_t type_oid) {
  if (param.null) return std::string("NULL");
  std::string text;
  if (param.binary) {
    auto decoded = binary_as_text(param.value, type_oid);
    if (!decoded) return decoded.error();
    text = std::move(*decoded);
  } else {
    text.assign(param.value);
  }
  std::string out = escaped(text);
  if (const char* name = type_name(type_oid)) {
    out += "::";
    out += name;
  }
  return out;
}

std::optional<std::vector<std::uint32_t>> parse_param_types(std::string_view raw) {
  std::vector<std::uint32_t> out;
  if (raw.empty()) return out;
  if (raw.size() < 2) return std::nullopt;
  const auto count = static_cast<std::size_t>(big_endian(raw.substr(0, 2)));
  if (raw.size() != 2 + 4 * count) return std::nullopt;
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(static_cast<std::uint32_t>(big_endian(raw.substr(2 + 4 * i, 4))));
  return out;
}

}  // namespace shardgate::pg
