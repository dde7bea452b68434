// What the router knows about one SQL statement, independent of the wire
// protocol it arrived on. Produced by analyze() (router/classify.h), consumed
// by route() (router/route.h). Pure data: no I/O, no ownership of the SQL text
// beyond the lifetime of the buffer it was parsed from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::router {

enum class Dialect { Postgres, Mysql };

enum class StatementKind {
  Read,        // SELECT / VALUES / TABLE / SHOW / EXPLAIN of a read: may go to a replica
  Write,       // INSERT / UPDATE / DELETE / MERGE / COPY FROM / CALL / LOCK / SELECT INTO ...
  Ddl,         // CREATE / ALTER / DROP / TRUNCATE / GRANT / COMMENT ...
  Begin,       // BEGIN / START TRANSACTION (see Statement::read_only_txn)
  Commit,      // COMMIT / END / COMMIT PREPARED
  Rollback,    // ROLLBACK / ABORT (not ROLLBACK TO SAVEPOINT)
  Savepoint,   // SAVEPOINT / RELEASE / ROLLBACK TO
  SessionSet,  // SET / RESET (session level; SET LOCAL is Utility inside a txn)
  Prepare,     // SQL-level PREPARE name AS ...
  Execute,     // SQL-level EXECUTE name
  Deallocate,  // DEALLOCATE
  Listen,      // LISTEN / UNLISTEN / NOTIFY: need a server connection of their own
  Utility,     // anything else (VACUUM, DISCARD, CHECKPOINT, DO, unknown): primary
  Empty,       // only whitespace / comments
};

// The role a leading hint comment (/* shardgate:primary */, /* shardgate:replica */)
// asks for. A hint overrides classification.
enum class HintRole { None, Primary, Replica };

struct Hints {
  HintRole role = HintRole::None;
  // /* shardgate:cache */ or /* shardgate:cache ttl_ms=N */: the read's
  // result may be served from the proxy's result cache (0: the configured
  // default time to live).
  std::optional<std::uint32_t> cache_ttl_ms;
};

struct Statement {
  StatementKind kind = StatementKind::Utility;
  // True when the statement must run on the primary whatever its kind says:
  // a locking read, a data-modifying CTE, a call of a writing function, several
  // statements of which one writes, or text the classifier could not read.
  bool needs_primary = true;
  bool locking_read = false;        // SELECT ... FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE
  bool writes_in_function = false;  // nextval(), setval(), pg_advisory_lock(), GET_LOCK() ...
  bool read_only_txn = false;       // BEGIN READ ONLY / START TRANSACTION READ ONLY
  bool multi_statement = false;     // more than one statement in the text
  Hints hints;
  // Lower-cased names of the tables the statement names (best effort: used by
  // sharding and hot keys, never to decide primary vs replica).
  std::vector<std::string> tables;
};

// Whether running the statement on the primary may change data, so that a
// session's later reads must see it (read-your-writes). Transaction control
// and session settings need the primary but change no data.
inline bool writes_data(const Statement& s) {
  switch (s.kind) {
    case StatementKind::Begin:
    case StatementKind::Commit:
    case StatementKind::Rollback:
    case StatementKind::Savepoint:
    case StatementKind::SessionSet:
    case StatementKind::Deallocate:
    case StatementKind::Empty:
      return s.multi_statement && s.needs_primary;
    default:
      return s.needs_primary;
  }
}

// Options that change classification; part of the immutable config snapshot.
struct AnalyzeOptions {
  // Extra functions (lower case, without schema) that write when called.
  std::vector<std::string> writing_functions;
};

}  // namespace shardgate::router
