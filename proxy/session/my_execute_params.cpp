#include "proxy/session/my_execute_params.h"

#include "proxy/protocol/mysql/value_text.h"

namespace shardgate::session {

namespace {

Result<std::vector<mysql::BinaryType>> param_types(const mysql::StmtExecute& exec,
                                                   std::string_view raw_types,
                                                   std::uint16_t count) {
  if (!exec.param_types.empty()) return exec.param_types;
  if (raw_types.size() < std::size_t{count} * 2)
    return make_error("COM_STMT_EXECUTE without parameter types");
  std::vector<mysql::BinaryType> types;
  for (std::uint16_t i = 0; i < count; ++i)
    types.push_back({static_cast<std::uint8_t>(raw_types[2 * i]),
                     (static_cast<std::uint8_t>(raw_types[2 * i + 1]) & 0x80) != 0});
  return types;
}

bool null_bit(const mysql::StmtExecute& exec, std::uint16_t i) {
  return i / 8 < exec.null_bitmap.size() &&
         ((static_cast<std::uint8_t>(exec.null_bitmap[i / 8]) >> (i % 8)) & 1) != 0;
}

// Visits every parameter's value: long data first (it wins over the NULL
// bit, which Connector/C sets for a parameter bound without a buffer), then
// NULL (std::monostate), then the packet's value.
template <typename Visit>
Result<void> each_value(const mysql::StmtExecute& exec, std::string_view raw_types,
                        std::uint16_t count,
                        const std::vector<std::optional<std::string>>& long_data, Visit visit) {
  auto types = param_types(exec, raw_types, count);
  if (!types) return types.error();
  mysql::PayloadReader reader(exec.values);
  for (std::uint16_t i = 0; i < count; ++i) {
    if (i < long_data.size() && long_data[i]) {
      if (auto r = visit(i, (*types)[i], mysql::BinaryValue{std::string_view(*long_data[i])}); !r)
        return r;
      continue;
    }
    if (null_bit(exec, i)) {
      if (auto r = visit(i, (*types)[i], mysql::BinaryValue{}); !r) return r;
      continue;
    }
    auto value = mysql::read_binary_value(reader, (*types)[i]);
    if (!value) return value.error();
    if (auto r = visit(i, (*types)[i], *value); !r) return r;
  }
  return {};
}

}  // namespace

std::vector<std::optional<std::string>> long_data_values(const std::vector<std::string>& chunks,
                                                         std::uint16_t count) {
  std::vector<std::optional<std::string>> out(count);
  for (const std::string& chunk : chunks) {
    // command (1), statement id (4), parameter (2), data
    if (chunk.size() < 7) continue;
    const auto param = static_cast<std::uint16_t>(static_cast<std::uint8_t>(chunk[5]) |
                                                  (static_cast<std::uint8_t>(chunk[6]) << 8));
    if (param >= count) continue;
    if (!out[param]) out[param].emplace();
    out[param]->append(chunk, 7);
  }
  return out;
}

Result<std::vector<router::ParamValue>> execute_params(
    const mysql::StmtExecute& exec, std::string_view raw_types, std::uint16_t count,
    const std::vector<std::optional<std::string>>& long_data, std::vector<std::string>& storage) {
  std::vector<router::ParamValue> out(count);
  storage.assign(count, std::string());
  auto read = each_value(
      exec, raw_types, count, long_data,
      [&](std::uint16_t i, mysql::BinaryType, const mysql::BinaryValue& value) -> Result<void> {
        std::string& text = storage[i];
        if (std::holds_alternative<std::monostate>(value)) return {};  // Null
        if (auto* s = std::get_if<std::int64_t>(&value)) {
          text = std::to_string(*s);
        } else if (auto* u = std::get_if<std::uint64_t>(&value)) {
          text = std::to_string(*u);
        } else if (auto* bytes = std::get_if<std::string_view>(&value)) {
          text.assign(*bytes);
        } else if (auto* d = std::get_if<double>(&value)) {
          text = std::to_string(*d);
        } else if (auto* f = std::get_if<float>(&value)) {
          text = std::to_string(*f);
        } else {
          text = "(a date or time)";
        }
        out[i] = {router::ParamValue::Form::Text, text};
        return {};
      });
  if (!read) return read.error();
  return out;
}

Result<std::vector<std::string>> execute_literals(
    const mysql::StmtExecute& exec, std::string_view raw_types, std::uint16_t count,
    const std::vector<std::optional<std::string>>& long_data, bool no_backslash_escapes) {
  std::vector<std::string> out(count);
  auto read = each_value(exec, raw_types, count, long_data,
                         [&](std::uint16_t i, mysql::BinaryType type,
                             const mysql::BinaryValue& value) -> Result<void> {
                           auto literal = mysql::sql_literal(value, type, no_backslash_escapes);
                           if (!literal) return literal.error();
                           out[i] = std::move(*literal);
                           return {};
                         });
  if (!read) return read.error();
  return out;
}

}  // namespace shardgate::session
