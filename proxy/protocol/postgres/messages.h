// PostgreSQL v3 message bodies: decoders for the messages the proxy must look
// inside, and an encoder for the ones it writes itself. Sans-io: strings in,
// strings out. Everything the proxy merely relays is never decoded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardgate::pg {

// Reads NUL-terminated strings and integers from a message body; any read past
// the end sets failed() instead of reading out of bounds.
class BodyReader {
 public:
  explicit BodyReader(std::string_view body) : body_(body) {}
  std::string_view cstr();
  std::uint32_t u32();
  std::uint16_t u16();
  std::uint8_t u8();
  std::string_view bytes(std::size_t n);
  std::string_view rest();
  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == body_.size(); }

 private:
  std::string_view body_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

// Builds one or more messages into a string, patching the length on end().
class Encoder {
 public:
  Encoder& begin(char type);
  Encoder& begin_untyped();  // startup-phase packets
  Encoder& u32(std::uint32_t v);
  Encoder& u16(std::uint16_t v);
  Encoder& u8(std::uint8_t v);
  Encoder& cstr(std::string_view s);
  Encoder& raw(std::string_view s);
  Encoder& end();
  std::string& data() { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::size_t start_ = 0;
};

using Params = std::vector<std::pair<std::string, std::string>>;

// StartupMessage body after the protocol version: name\0value\0 ... \0
std::optional<Params> parse_startup_params(std::string_view body);

struct ParseMessage {
  std::string_view name;
  std::string_view query;
  std::string_view param_types;  // int16 count + int32 oids, kept raw
};
std::optional<ParseMessage> parse_parse(std::string_view body);

struct BindHead {
  std::string_view portal;
  std::string_view statement;
  std::string_view rest;  // parameter formats, values, result formats
};
std::optional<BindHead> parse_bind(std::string_view body);

// One parameter value of a Bind, by position.
struct BindParam {
  bool null = false;
  bool binary = false;  // format code 1
  std::string_view value;
};
// Decodes BindHead::rest's formats and values (the result formats after them
// are not needed); false when the message is malformed.
bool parse_bind_params(std::string_view rest, std::vector<BindParam>& out);
// True when BindHead::rest asks for every result column in text format.
bool bind_results_all_text(std::string_view rest);
// Execute: the portal and the row limit (0: all rows).
struct ExecuteMessage {
  std::string_view portal;
  std::uint32_t max_rows = 0;
};
std::optional<ExecuteMessage> parse_execute(std::string_view body);
std::string execute_message(std::string_view portal, std::uint32_t max_rows);

struct DescribeOrClose {
  char kind = 0;  // 'S' statement or 'P' portal
  std::string_view name;
};
std::optional<DescribeOrClose> parse_describe_or_close(std::string_view body);

// RowDescription ('T') fields and DataRow ('D') cells: what a proxy that
// merges the rows of several servers reads and writes again.
struct FieldDescription {
  std::string name;
  std::uint32_t table_oid = 0;
  std::uint16_t column = 0;
  std::uint32_t type_oid = 0;
  std::int16_t type_size = 0;
  std::int32_t type_modifier = 0;
  std::uint16_t format = 0;  // 0 text, 1 binary
};
std::optional<std::vector<FieldDescription>> parse_row_description(std::string_view body);
std::string row_description(const std::vector<FieldDescription>& fields);

using DataRowCells = std::vector<std::optional<std::string_view>>;  // nullopt: SQL NULL
bool parse_data_row(std::string_view body, DataRowCells& out);
void append_data_row(std::string& out, const std::vector<std::optional<std::string>>& cells);

struct ErrorFields {
  std::string severity, sqlstate, message, detail;
};
ErrorFields parse_error_fields(std::string_view body);

// Message builders (whole frames).
std::string error_response(std::string_view sqlstate, std::string_view message,
                           std::string_view severity = "ERROR");
std::string ready_for_query(char status);
std::string command_complete(std::string_view tag);  // "INSERT 0 3", "COMMIT" ...
std::string parameter_status(std::string_view name, std::string_view value);
std::string backend_key_data(std::uint32_t pid, std::uint32_t key);
std::string auth_request(std::uint32_t code, std::string_view data = {});
std::string startup_message(const Params& params);
std::string cancel_request(std::uint32_t pid, std::uint32_t key);
std::string query_message(std::string_view sql);
std::string parse_message(std::string_view name, std::string_view query,
                          std::string_view param_types);
std::string bind_message(std::string_view portal, std::string_view statement,
                         std::string_view rest);
std::string describe_or_close_message(char type, char kind, std::string_view name);
std::string password_message(std::string_view password);
std::string sasl_initial_response(std::string_view mechanism, std::string_view data);
std::string sasl_response(std::string_view data);
std::string simple_message(char type);  // ParseComplete '1', CloseComplete '3', Terminate 'X' ...

// Authentication request codes (server -> client 'R').
inline constexpr std::uint32_t kAuthOk = 0;
inline constexpr std::uint32_t kAuthCleartext = 3;
inline constexpr std::uint32_t kAuthMd5 = 5;
inline constexpr std::uint32_t kAuthSasl = 10;
inline constexpr std::uint32_t kAuthSaslContinue = 11;
inline constexpr std::uint32_t kAuthSaslFinal = 12;

}  // namespace shardgate::pg
