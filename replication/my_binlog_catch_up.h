// MariaDB catch-up from an old primary's binlog: the transactions it
// committed past the position where the new primary took over, read with
// mariadb-binlog (by GTID, over the replication protocol) and applied on the
// new primary with the mariadb client, as MariaDB's point-in-time recovery
// does. Both tools come with Debian's mariadb-client; they turn row events
// into BINLOG statements and carry every session setting the events need,
// which a hand-written applier would have to redo.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "replication/failover_ops.h"

namespace shardgate::replication {

// mariadb-binlog's output made fit to run on another server: the lines that
// would give each transaction its old GTID are dropped (the new primary
// numbers them itself, and gtid_strict_mode refuses numbers from the past),
// and the line where each transaction begins is kept to name one that fails.
struct BinlogScript {
  std::string text;
  std::vector<std::pair<std::size_t, std::uint64_t>> starts;  // (1-based line, seq_no)
};
BinlogScript binlog_script(std::string_view output);

// The seq_no of the transaction the mariadb client stopped in, from its
// "ERROR ... at line N" on `client_output`; none when it names no line.
std::optional<std::uint64_t> failed_transaction(const BinlogScript& script,
                                                std::string_view client_output);

// The seq_nos in (after, through] that are not in `skip`, as runs of
// consecutive numbers (first, last).
std::vector<std::pair<std::uint64_t, std::uint64_t>> seq_runs(std::uint64_t after,
                                                              std::uint64_t through,
                                                              const std::set<std::uint64_t>& skip);

struct BinlogSource {
  ServerAddress server;
  unsigned long server_id = 0;  // the old primary's: its own GTIDs are the errant ones
  std::string first_log;        // a binlog file name mariadb-binlog insists on
};

// Applies the old primary's transactions past `took_over_at` through
// `own_last` on `target`, except those in `replayed`. Reads as the
// replication user, applies as the control user (which needs BINLOG REPLAY
// and the privileges the transactions need).
OldPrimaryCatchUp apply_old_binlog(const BinlogSource& source, const ServerAddress& target,
                                   const FailoverLogin& login, std::uint64_t took_over_at,
                                   std::uint64_t own_last, const std::set<std::uint64_t>& replayed);

}  // namespace shardgate::replication
