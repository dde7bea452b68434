// PostgreSQL catch-up from an old primary: the transactions it committed
// that no replica received, read back as rows through logical decoding and
// applied on the new primary.
//
// A physical WAL applies only to a copy of the same cluster, so the primary
// keeps a logical replication slot per database (test_decoding), which the
// proxy advances to what every replica has received. When an old primary
// answers again after a failover, its slots still hold everything past that
// point: the transactions whose commit lies past the position the new
// primary took over at are the ones only it had. It needs
// `wal_level = logical`.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "common/result.h"
#include "replication/client_handles.h"
#include "replication/failover_ops.h"

namespace shardgate::replication {

// Opens a control connection to `server`'s database `database`.
using PgConnector =
    std::function<Result<PgConn>(const ServerAddress&, const std::string& database)>;

// The slot that keeps `database_oid`'s changes readable on a primary.
std::string catch_up_slot_name(std::uint32_t database_oid);

// On a primary: a slot in every database (created when missing) advanced to
// `received_by_all`. An error names what could not be done (wal_level
// below logical, a slot that could not be created in time).
Result<void> keep_catch_up_slots(const PgConnector& connect, const ServerAddress& primary,
                                 const std::string& admin_database, std::uint64_t received_by_all);

// Applies on `new_primary` the transactions `old_primary`'s slots hold that
// committed past `took_over_at`, except those whose transaction id is in
// `replayed` (full xids; the journal replayed them), then drops its slots.
Result<OldPrimaryCatchUp> apply_from_catch_up_slots(const PgConnector& connect,
                                                    const ServerAddress& old_primary,
                                                    const ServerAddress& new_primary,
                                                    const std::string& admin_database,
                                                    std::uint64_t took_over_at,
                                                    const std::set<std::uint64_t>& replayed);

}  // namespace shardgate::replication
