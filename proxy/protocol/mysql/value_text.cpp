#include "proxy/protocol/mysql/value_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "proxy/protocol/mysql/constants.h"

namespace shardgate::mysql {

namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

// `digits` decimal digits at `text[at]`, moved past.
bool take_digits(std::string_view text, std::size_t& at, std::size_t digits, std::uint32_t& out) {
  if (at + digits > text.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint32_t>(c - '0');
  }
  at += digits;
  return true;
}

bool take_char(std::string_view text, std::size_t& at, char c) {
  if (at >= text.size() || text[at] != c) return false;
  ++at;
  return true;
}

// ".123" after seconds: up to six digits, scaled to microseconds.
bool take_fraction(std::string_view text, std::size_t& at, std::uint32_t& micro) {
  micro = 0;
  if (at == text.size()) return true;
  if (!take_char(text, at, '.')) return false;
  std::size_t digits = 0;
  while (at < text.size() && digits < 6 && text[at] >= '0' && text[at] <= '9') {
    micro = micro * 10 + static_cast<std::uint32_t>(text[at] - '0');
    ++at;
    ++digits;
  }
  if (digits == 0 || at != text.size()) return false;
  for (; digits < 6; ++digits) micro *= 10;
  return true;
}

Result<BinaryValue> parse_datetime(std::string_view text) {
  std::size_t at = 0;
  std::uint32_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micro = 0;
  bool good = take_digits(text, at, 4, year) && take_char(text, at, '-') &&
              take_digits(text, at, 2, month) && take_char(text, at, '-') &&
              take_digits(text, at, 2, day);
  if (good && at < text.size())
    good = take_char(text, at, ' ') && take_digits(text, at, 2, hour) && take_char(text, at, ':') &&
           take_digits(text, at, 2, minute) && take_char(text, at, ':') &&
           take_digits(text, at, 2, second) && take_fraction(text, at, micro);
  if (!good) return make_error("not a date or datetime: '" + std::string(text) + "'");
  DateTime dt;
  dt.year = static_cast<std::uint16_t>(year);
  dt.month = static_cast<std::uint8_t>(month);
  dt.day = static_cast<std::uint8_t>(day);
  dt.hour = static_cast<std::uint8_t>(hour);
  dt.minute = static_cast<std::uint8_t>(minute);
  dt.second = static_cast<std::uint8_t>(second);
  dt.microsecond = micro;
  return BinaryValue{dt};
}

Result<BinaryValue> parse_time(std::string_view text) {
  std::size_t at = 0;
  TimeValue t;
  t.negative = take_char(text, at, '-');
  std::size_t hour_digits = 0;
  while (at + hour_digits < text.size() && text[at + hour_digits] >= '0' &&
         text[at + hour_digits] <= '9')
    ++hour_digits;
  std::uint32_t hours = 0, minute = 0, second = 0, micro = 0;
  const bool good = hour_digits >= 1 && hour_digits <= 4 &&
                    take_digits(text, at, hour_digits, hours) && take_char(text, at, ':') &&
                    take_digits(text, at, 2, minute) && take_char(text, at, ':') &&
                    take_digits(text, at, 2, second) && take_fraction(text, at, micro);
  if (!good) return make_error("not a time: '" + std::string(text) + "'");
  t.days = hours / 24;
  t.hour = static_cast<std::uint8_t>(hours % 24);
  t.minute = static_cast<std::uint8_t>(minute);
  t.second = static_cast<std::uint8_t>(second);
  t.microsecond = micro;
  return BinaryValue{t};
}

std::string two(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02u", v % 100);
  return buf;
}

std::string fraction(std::uint32_t micro) {
  if (micro == 0) return {};
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%06u", static_cast<unsigned>(micro % 1000000));
  return buf;
}

std::string hex_literal(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "X'";
  out.reserve(bytes.size() * 2 + 3);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  out.push_back('\'');
  return out;
}

std::string quoted(std::string_view s, bool no_backslash_escapes) {
  std::string out = "'";
  out.reserve(s.size() + 2);
  for (char c : s) {
    if (c == '\'') {
      out += "''";  // the same under both escaping rules, unlike \'
    } else if (c == '\\' && !no_backslash_escapes) {
      out += "\\\\";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

bool is_blob(std::uint8_t type) {
  return type == kTypeTinyBlob || type == kTypeMediumBlob || type == kTypeLongBlob ||
         type == kTypeBlob || type == kTypeGeometry;
}

template <typename F>
Result<std::string> floating(F value) {
  if (!std::isfinite(value)) return make_error("a parameter is NaN or infinite");
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return make_error("a floating-point parameter does not print");
  std::string out(buf, end);
  // 1.5 would be a DECIMAL literal; 1.5e0 is a DOUBLE, as the parameter was.
  if (out.find_first_of("eE") == std::string::npos) out += "e0";
  return out;
}

}  // namespace

Result<BinaryValue> binary_value_from_text(std::string_view text, BinaryType type) {
  switch (type.type) {
    case kTypeTiny:
    case kTypeShort:
    case kTypeYear:
    case kTypeLong:
    case kTypeInt24:
    case kTypeLongLong: {
      if (type.is_unsigned) {
        std::uint64_t u = 0;
        if (parse_number(text, u)) return BinaryValue{u};
      } else {
        std::int64_t s = 0;
        if (parse_number(text, s)) return BinaryValue{s};
      }
      return make_error("not an integer: '" + std::string(text) + "'");
    }
    case kTypeFloat:
    case kTypeDouble: {
      double d = 0;
      if (!parse_number(text, d)) return make_error("not a number: '" + std::string(text) + "'");
      if (type.type == kTypeFloat) return BinaryValue{static_cast<float>(d)};
      return BinaryValue{d};
    }
    case kTypeDate:
    case kTypeNewDate:
    case kTypeDateTime:
    case kTypeTimestamp:
      return parse_datetime(text);
    case kTypeTime:
      return parse_time(text);
    default:
      return BinaryValue{text};
  }
}

Result<std::string> sql_literal(const BinaryValue& value, BinaryType type,
                                bool no_backslash_escapes) {
  if (std::holds_alternative<std::monostate>(value)) return std::string("NULL");
  if (const auto* s = std::get_if<std::int64_t>(&value)) return std::to_string(*s);
  if (const auto* u = std::get_if<std::uint64_t>(&value)) return std::to_string(*u);
  if (const auto* f = std::get_if<float>(&value)) return floating(*f);
  if (const auto* d = std::get_if<double>(&value)) return floating(*d);
  if (const auto* dt = std::get_if<DateTime>(&value)) {
    std::string out = "'" + std::to_string(dt->year) + "-" + two(dt->month) + "-" + two(dt->day);
    if (type.type != kTypeDate && type.type != kTypeNewDate)
      out += " " + two(dt->hour) + ":" + two(dt->minute) + ":" + two(dt->second) +
             fraction(dt->microsecond);
    return out + "'";
  }
  if (const auto* t = std::get_if<TimeValue>(&value)) {
    const std::uint64_t hours = std::uint64_t{t->days} * 24 + t->hour;
    std::string out = t->negative ? "'-" : "'";
    out += (hours < 10 ? "0" : "") + std::to_string(hours) + ":" + two(t->minute) + ":" +
           two(t->second) + fraction(t->microsecond);
    return out + "'";
  }
  const std::string_view bytes = std::get<std::string_view>(value);
  if (is_blob(type.type) || bytes.find('\0') != std::string_view::npos) return hex_literal(bytes);
  return quoted(bytes, no_backslash_escapes);
}

}  // namespace shardgate::mysql
