#include "router/route.h"

namespace shardgate::router {
namespace {

using Kind = StatementKind;

constexpr RouteDecision primary(const char* reason) {
  return {TargetRole::Primary, reason};
}
constexpr RouteDecision replica(const char* reason) {
  return {TargetRole::Replica, reason};
}

// Why a statement may only ever run on the primary, or nullptr. Nothing,
// not even a hint, sends these to a replica: a MySQL replica without
// read_only would apply the write and diverge.
const char* primary_only_reason(const Statement& s) {
  if (s.kind == Kind::Write) return "write";
  if (s.kind == Kind::Ddl) return "ddl";
  if (s.locking_read) return "locking-read";
  if (s.writes_in_function) return "writing-function";
  return nullptr;
}

// A multi-statement text whose other statements need the primary (SELECT 1;
// SET x = 1) cannot be split between servers, so it stays on the primary.
bool splits_session(const Statement& s) {
  return s.multi_statement && s.needs_primary;
}

const char* kind_reason(Kind kind) {
  switch (kind) {
    case Kind::Begin:
    case Kind::Commit:
    case Kind::Rollback:
    case Kind::Savepoint:
      return "transaction-control";
    case Kind::SessionSet:
      return "session-state";
    case Kind::Prepare:
    case Kind::Execute:
    case Kind::Deallocate:
      return "prepared-statement";
    case Kind::Listen:
      return "listen";
    case Kind::Empty:
      return "empty";
    case Kind::Read:
      return "needs-primary";
    default:
      return "utility";
  }
}

// Statements that run inside a read-only transaction where it lives. Others
// (Utility, whose text may not even have been readable; Execute of an
// unknown statement ...) are not trusted to a replica.
bool follows_read_only_transaction(const Statement& s) {
  switch (s.kind) {
    case Kind::Read:
    case Kind::Begin:
    case Kind::Commit:
    case Kind::Rollback:
    case Kind::Savepoint:
    case Kind::SessionSet:
      return !splits_session(s);
    default:
      return false;
  }
}

// The session flags are consulted the same way as for the BEGIN, so the
// answer stays where the transaction was started (see SessionView).
RouteDecision read_only_placement(const SessionView& session) {
  if (session.reads_on_primary) return primary("reads-on-primary");
  if (session.read_your_writes_pending) return primary("read-your-writes");
  return replica("read-only-transaction");
}

RouteDecision inside_transaction(const Statement& s, const SessionView& session) {
  if (!session.transaction_read_only) return primary("transaction");
  if (!follows_read_only_transaction(s)) return primary(kind_reason(s.kind));
  return read_only_placement(session);
}

RouteDecision begin(const Statement& s, const SessionView& session) {
  if (!s.read_only_txn || s.needs_primary) return primary("transaction-control");
  return read_only_placement(session);
}

RouteDecision read(const Statement& s, const SessionView& session) {
  if (session.cache_fill) return primary("cache-fill");
  if (session.read_your_writes_pending) return primary("read-your-writes");
  if (session.reads_on_primary && !session.hot_key_read) return primary("reads-on-primary");
  if (s.needs_primary) return primary("needs-primary");
  return replica(session.hot_key_read ? "hot-key" : "read");
}

}  // namespace

RouteDecision route(const Statement& stmt, const SessionView& session) {
  const HintRole hint = stmt.hints.role;
  if (hint == HintRole::Primary) return primary("hint");
  if (const char* reason = primary_only_reason(stmt)) {
    return primary(hint == HintRole::Replica ? "write-ignores-hint" : reason);
  }
  // A replica hint is the application's word that this read may be stale.
  if (hint == HintRole::Replica && stmt.kind == Kind::Read && !splits_session(stmt)) {
    return replica("hint");
  }
  if (session.in_transaction) return inside_transaction(stmt, session);
  if (stmt.kind == Kind::Begin) return begin(stmt, session);
  if (stmt.kind == Kind::Read) return read(stmt, session);
  return primary(kind_reason(stmt.kind));
}

}  // namespace shardgate::router
