#include "proxy/config/yaml_loader.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace shardgate::config {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

Error at(const std::string& path, const std::string& problem) {
  return make_error("config key '" + path + "': " + problem);
}

template <class Int>
Result<Int> parse_int(const std::string& text, const std::string& path) {
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return at(path, "'" + text + "' is out of range");
  if (ec != std::errc() || end != text.data() + text.size())
    return at(path, "expected an integer, got '" + text + "'");
  return value;
}

Result<double> parse_double(const std::string& text, const std::string& path) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    return at(path, "expected a number, got '" + text + "'");
  return value;
}

Result<bool> parse_bool(const std::string& text, const std::string& path) {
  std::string t = text;
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  return at(path, "expected true or false, got '" + text + "'");
}

// Enum values are written in lower case with dashes in YAML (scram-sha-256) and
// in upper case with underscores in the .proto (SCRAM_SHA_256).
std::string enum_spelling(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Result<const google::protobuf::EnumValueDescriptor*> parse_enum(const FieldDescriptor& field,
                                                                const std::string& text,
                                                                const std::string& path) {
  const auto* type = field.enum_type();
  const auto* value = type->FindValueByName(enum_spelling(text));
  if (value != nullptr && value->number() != 0) return value;
  std::string allowed;
  for (int i = 1; i < type->value_count(); ++i) {
    std::string name = type->value(i)->name();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](char c) { return c == '_' ? '-' : static_cast<char>(std::tolower(c)); });
    allowed += (allowed.empty() ? "" : ", ") + name;
  }
  return at(path, "'" + text + "' is not one of: " + allowed);
}

Result<void> set_scalar(Message& msg, const FieldDescriptor& field, const YAML::Node& node,
                        const std::string& path) {
  if (!node.IsScalar()) return at(path, "expected a single value, got a list or a map");
  const std::string text = node.Scalar();
  const Reflection& r = *msg.GetReflection();
  const bool rep = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r.AddString(&msg, &field, text) : r.SetString(&msg, &field, text);
      return {};
    case FieldDescriptor::CPPTYPE_BOOL: {
      auto v = parse_bool(text, path);
      if (!v) return v.error();
      rep ? r.AddBool(&msg, &field, *v) : r.SetBool(&msg, &field, *v);
      return {};
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      auto v = parse_int<uint32_t>(text, path);
      if (!v) return v.error();
      rep ? r.AddUInt32(&msg, &field, *v) : r.SetUInt32(&msg, &field, *v);
      return {};
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      auto v = parse_int<uint64_t>(text, path);
      if (!v) return v.error();
      rep ? r.AddUInt64(&msg, &field, *v) : r.SetUInt64(&msg, &field, *v);
      return {};
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      auto v = parse_int<int32_t>(text, path);
      if (!v) return v.error();
      rep ? r.AddInt32(&msg, &field, *v) : r.SetInt32(&msg, &field, *v);
      return {};
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      auto v = parse_int<int64_t>(text, path);
      if (!v) return v.error();
      rep ? r.AddInt64(&msg, &field, *v) : r.SetInt64(&msg, &field, *v);
      return {};
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      auto v = parse_double(text, path);
      if (!v) return v.error();
      rep ? r.AddDouble(&msg, &field, *v) : r.SetDouble(&msg, &field, *v);
      return {};
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      auto v = parse_enum(field, text, path);
      if (!v) return v.error();
      rep ? r.AddEnum(&msg, &field, *v) : r.SetEnum(&msg, &field, *v);
      return {};
    }
    default:
      return at(path, "unsupported field type in schema");
  }
}

Result<void> set_field(Message& msg, const FieldDescriptor& field, const YAML::Node& node,
                       const std::string& path) {
  const Reflection& r = *msg.GetReflection();
  if (field.is_repeated()) {
    if (!node.IsSequence()) return at(path, "expected a list");
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        auto ok = yaml_to_message(node[i], *r.AddMessage(&msg, &field), item_path);
        if (!ok) return ok;
      } else {
        auto ok = set_scalar(msg, field, node[i], item_path);
        if (!ok) return ok;
      }
    }
    return {};
  }
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE)
    return yaml_to_message(node, *r.MutableMessage(&msg, &field), path);
  return set_scalar(msg, field, node, path);
}

}  // namespace

Result<void> yaml_to_message(const YAML::Node& node, Message& message, const std::string& path) {
  if (node.IsNull()) return {};
  if (!node.IsMap()) return at(path.empty() ? "(top level)" : path, "expected a map of keys");
  const auto* descriptor = message.GetDescriptor();
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const std::string key_path = join(path, key);
    const FieldDescriptor* field = descriptor->FindFieldByName(key);
    if (field == nullptr) {
      std::string known;
      for (int i = 0; i < descriptor->field_count(); ++i)
        known += (known.empty() ? "" : ", ") + descriptor->field(i)->name();
      return at(key_path, "unknown key (known keys here: " + known + ")");
    }
    if (entry.second.IsNull()) continue;
    auto ok = set_field(message, *field, entry.second, key_path);
    if (!ok) return ok;
  }
  return {};
}

}  // namespace shardgate::config
