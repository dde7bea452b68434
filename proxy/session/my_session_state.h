// MySQL session-state rules, pure functions of the statement text: which
// statements the proxy follows for the client (SET, USE) so that it can move
// between server connections, which ones tie the client to one connection
// (user variables, locks, temporary tables, SQL-level PREPARE ...), and which
// it refuses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/protocol/mysql/constants.h"
#include "router/statement.h"

namespace shardgate::session {

// Not in the codec's list: only the proxy raises it.
inline constexpr mysql::ErrorCode kErNotAllowedCommand{1148, "42000"};

// A change of session state the proxy replays on other server connections
// once the server accepted it.
struct SessionChange {
  enum class Kind { None, Setting, Schema };
  Kind kind = Kind::None;
  std::string text;  // Setting: the SET statement; Schema: the database name
};

SessionChange classify_session_change(std::string_view sql, const router::Statement& stmt);

// True when the statement leaves state on the server connection that the
// proxy cannot carry elsewhere: the client must stay on that connection.
bool pins_session(std::string_view sql);

inline constexpr mysql::ErrorCode kErNoSuchThread{1094, "HY000"};

// The statement reads the session's last generated id: LAST_INSERT_ID(),
// @@identity, @@last_insert_id. The proxy first restores the client's own
// value on the server connection it landed on.
bool reads_last_insert_id(std::string_view sql);

// KILL [QUERY | CONNECTION] <id>.
struct KillRequest {
  std::uint32_t id = 0;
  bool whole_connection = true;  // KILL and KILL CONNECTION; false for KILL QUERY
};
std::optional<KillRequest> parse_kill(std::string_view sql);

// LOAD DATA LOCAL INFILE: the server would ask the client for a file.
bool is_load_data_local(std::string_view sql);

// Everything the session asks of one COM_QUERY's text, from one lexing (the
// functions above each lex again: they are for tests and single questions).
struct StatementFacts {
  std::optional<KillRequest> kill;
  bool load_data_local = false;
  bool pins = false;
  bool reads_insert_id = false;
  SessionChange change;
};
StatementFacts inspect_statement(std::string_view sql, const router::Statement& stmt);

// The statement the proxy routes a command without SQL as (COM_INIT_DB,
// COM_FIELD_LIST, COM_STATISTICS): any server can answer it.
router::Statement read_statement();

}  // namespace shardgate::session
