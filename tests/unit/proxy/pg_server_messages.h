// PostgreSQL server messages as bytes, for the tests of what the proxy does
// with a server's answers (response_tracker_test, pg_journal_test).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shardgate::session::pg_test {

inline std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// One server message: type, int32 length (counting itself), body.
inline std::string msg(char type, std::string_view body = {}) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(body.size() + 4)) +
         std::string(body);
}

// A RowDescription of one column "id".
inline std::string row_description() {
  using namespace std::string_view_literals;
  return msg('T', "\0\x01id\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"sv);
}

inline std::string command_complete(std::string_view tag) {
  return msg('C', std::string(tag) + '\0');
}

inline std::string ready(char status) {
  return msg('Z', std::string(1, status));
}

}  // namespace shardgate::session::pg_test
