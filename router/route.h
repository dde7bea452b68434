// Primary/replica routing of one classified statement. A pure function of the
// statement and the session's state: no I/O, no topology (shard selection is
// a separate step), so every rule is a row in a table-driven test.
#pragma once

#include "router/statement.h"

namespace shardgate::router {

enum class TargetRole { Primary, Replica };

// What routing needs to know about the client session.
//
// Contract with the session: a transaction must run where its BEGIN was
// routed, so read_your_writes_pending and reads_on_primary must not change
// while a transaction is open (route() consults them again for statements
// inside a read-only transaction).
struct SessionView {
  bool in_transaction = false;
  bool transaction_read_only = false;
  bool read_your_writes_pending = false;  // the session wrote; replicas may not have it yet
  bool reads_on_primary = false;          // policy: this session reads from the primary
  // The read names only hot keys of tables that spread hot reads over
  // replicas: the reads-on-primary policy does not hold it back.
  bool hot_key_read = false;
  // The read's answer will be kept in the result cache: it must be the
  // primary's, so that no replica's lag outlives the write that bumped it.
  bool cache_fill = false;
};

struct RouteDecision {
  TargetRole role;
  const char* reason;  // static string for metrics and logs, e.g. "write", "read"
};

// Never sends a write, DDL, locking read or call of a writing function to a
// replica, whatever the hints say.
RouteDecision route(const Statement& stmt, const SessionView& session);

}  // namespace shardgate::router
