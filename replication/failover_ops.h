// The steps of a failover on real servers, one engine each (PostgreSQL over
// libpq, MariaDB over Connector/C). Control plane: blocking calls with
// connect timeouts, run on the failover thread, never on an I/O thread.
//
// Positions are the monitor's (replication/health.h): a WAL LSN, or the
// seq_no of the domain-0 GTID.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "replication/journal.pb.h"

namespace shardgate::replication {

struct ServerAddress {
  std::string name;
  std::string host;
  unsigned port = 0;
  std::string unix_socket_dir;  // PostgreSQL: used instead of host when set
  std::string unix_socket;      // MariaDB: used instead of host when set
};

struct FailoverLogin {
  std::string user, password, database;                // control statements (superuser-like)
  std::string replication_user, replication_password;  // replicas following a new primary
  std::chrono::milliseconds connect_timeout{1000};
};

// What catch_up_from_old_primary did.
struct OldPrimaryCatchUp {
  std::uint64_t errant = 0;           // transactions it held past the takeover position
  std::uint64_t skipped = 0;          // of them, already replayed from the write journal
  std::uint64_t applied = 0;          // applied on the new primary now
  std::vector<std::string> failures;  // one line per transaction not applied, with why
};

class FailoverOps {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~FailoverOps() = default;

  // Makes the server refuse writes and ends its client sessions (the
  // replication senders stay, so replicas can still catch up). An error when
  // it cannot be reached: a dead server needs no fence, the topology's epoch
  // keeps the proxy away from it.
  virtual Result<void> fence(const ServerAddress& server) = 0;
  // The server's own write position (after fence: nothing moves it any more).
  virtual Result<std::uint64_t> write_position(const ServerAddress& server) = 0;
  // Waits until the replica has applied everything it received and at least
  // `at_least`, then makes it a writable primary; returns the position it
  // took over at (what it had applied). Fails at `deadline` without promoting.
  virtual Result<std::uint64_t> promote(const ServerAddress& replica,
                                        std::optional<std::uint64_t> at_least,
                                        Clock::time_point deadline) = 0;
  // Points a replica at the new primary. With `was_primary` it is a fenced
  // old primary; `took_over_at` is the new primary's position when it took
  // over, when known: an old primary holding writes past it cannot follow
  // (they exist nowhere else) and is reported as needing a rebuild.
  virtual Result<void> follow(const ServerAddress& replica, const ServerAddress& primary,
                              bool was_primary, std::optional<std::uint64_t> took_over_at) = 0;
  // Undoes fence() on a primary that stays primary (a switchover that could not finish).
  virtual Result<void> unfence(const ServerAddress& server) = 0;
  // Runs one journaled transaction again on a new primary, as the user that
  // wrote it (replication/write_journal.h), all of it or nothing.
  virtual Result<void> replay(const ServerAddress& primary, const journal::Entry& entry,
                              const std::string& user, const std::string& password) = 0;
  // The catch-up replayed its last entry: connections kept for replay() close.
  virtual void replay_done() {}
  // Of a shard's journaled transactions, those a new primary lacks, in the
  // order to replay them. MariaDB: those past `took_over_at` (the caller
  // reads only those); PostgreSQL: asked of the server by transaction id.
  virtual Result<std::vector<journal::Entry>> lacking(const ServerAddress& primary,
                                                      std::vector<journal::Entry> entries,
                                                      std::uint64_t took_over_at) = 0;
  // A fenced old primary that answers again may hold transactions past
  // `took_over_at` that no replica received: their clients saw the
  // connection drop, or the journal could not keep them (writes sent to it
  // directly, XA). They are applied on the new primary from the old one's
  // own log, except those in `replayed` (the journal's catch-up ran them:
  // MariaDB seq_nos, PostgreSQL transaction ids). One that fails (it
  // conflicts with what the new primary wrote since) is reported and the
  // others still go. MariaDB reads the binlog by GTID; PostgreSQL decodes
  // the slots keep_catch_up_point kept.
  virtual Result<OldPrimaryCatchUp> catch_up_from_old_primary(
      const ServerAddress& old_primary, const ServerAddress& new_primary,
      std::uint64_t took_over_at, const std::set<std::uint64_t>& replayed) = 0;
  // Keeps what the primary commits from `received_by_all` on (a position
  // every replica has received) readable for catch_up_from_old_primary,
  // should it fail. MariaDB: its binlog does it. PostgreSQL: a logical
  // replication slot per database, advanced to it.
  virtual Result<void> keep_catch_up_point(const ServerAddress& primary,
                                           std::uint64_t received_by_all) = 0;
  // An error saying why the server cannot feed the journal (it does not
  // report the GTIDs of commits).
  virtual Result<void> check_journal(const ServerAddress& server) = 0;
};

std::unique_ptr<FailoverOps> make_pg_failover_ops(FailoverLogin login);
std::unique_ptr<FailoverOps> make_mysql_failover_ops(FailoverLogin login);

}  // namespace shardgate::replication
