#include "replication/pg_old_primary.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "replication/pg_monitor.h"
#include "replication/test_decoding.h"

namespace shardgate::replication {
namespace {

constexpr const char* kSlotPrefix = "shardgate_catchup_";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Rows of `sql` with text parameters; an error names the server.
Result<std::vector<std::vector<std::optional<std::string>>>> rows(
    PGconn* c, const ServerAddress& server, const std::string& sql,
    const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PgResult r(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0));
  const auto status = PQresultStatus(r.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    return make_error(server.name + ": " + trimmed(PQresultErrorMessage(r.get())));
  std::vector<std::vector<std::optional<std::string>>> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    auto& row = out.emplace_back();
    for (int j = 0; j < PQnfields(r.get()); ++j)
      row.push_back(PQgetisnull(r.get(), i, j)
                        ? std::nullopt
                        : std::optional<std::string>(PQgetvalue(r.get(), i, j)));
  }
  return out;
}

struct Transaction {
  std::uint32_t xid = 0;
  std::uint64_t commit_lsn = 0;
  std::vector<DecodedChange> changes;
  std::string error;  // a change that could not be read
};

// What a slot holds, transaction by transaction, in commit order.
Result<std::vector<Transaction>> peek(PGconn* c, const ServerAddress& server,
                                      const std::string& slot) {
  auto changes = rows(c, server,
                      "SELECT lsn, xid, data FROM pg_logical_slot_peek_changes($1, NULL, NULL, "
                      "'include-xids', '1', 'skip-empty-xacts', '1')",
                      {slot});
  if (!changes) return changes.error();
  std::vector<Transaction> out;
  Transaction current;
  for (const auto& row : *changes) {
    const std::string data = row[2].value_or("");
    if (data.starts_with("BEGIN")) {
      current = Transaction{};
      current.xid =
          static_cast<std::uint32_t>(std::strtoul(row[1].value_or("0").c_str(), nullptr, 10));
    } else if (data.starts_with("COMMIT")) {
      auto lsn = parse_lsn(row[0].value_or(""));
      if (!lsn) return lsn.error();
      current.commit_lsn = *lsn;
      out.push_back(std::move(current));
      current = Transaction{};
    } else {
      auto change = parse_test_decoding(data);
      if (!change && current.error.empty()) current.error = change.error().message();
      if (change && *change) current.changes.push_back(std::move(**change));
    }
  }
  return out;
}

// Applies transactions of one database on the new primary, each whole or
// not at all, as logical replication would: with session_replication_role
// = replica, so triggers (whose own changes are in the WAL too) do not fire
// twice.
class Applier {
 public:
  Applier(PGconn* c, const ServerAddress& server) : c_(c), server_(server) {}

  Result<void> apply(const Transaction& t) {
    if (!t.error.empty()) return make_error(t.error);
    if (auto r = exec("BEGIN"); !r) return r;
    auto done = [&]() -> Result<void> {
      if (auto r = exec("SET LOCAL session_replication_role = replica"); !r) return r;
      for (const auto& change : t.changes) {
        std::vector<std::string> key;
        if (change.kind == DecodedChange::Kind::kUpdate && change.old_key.empty()) {
          auto k = primary_key(change.table);
          if (!k) return k.error();
          key = *k;
        }
        auto sql = change_sql(change, key);
        if (!sql) return sql.error();
        PgResult r(PQexec(c_, sql->c_str()));
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
          return make_error(trimmed(PQresultErrorMessage(r.get())) + " (" + *sql + ")");
        const bool finds_row = change.kind == DecodedChange::Kind::kUpdate ||
                               change.kind == DecodedChange::Kind::kDelete;
        if (finds_row && std::string(PQcmdTuples(r.get())) == "0")
          return make_error("no such row on " + server_.name + " any more (" + *sql + ")");
      }
      return exec("COMMIT");
    }();
    if (!done) exec("ROLLBACK");
    return done;
  }

 private:
  Result<void> exec(const std::string& sql) {
    PgResult r(PQexec(c_, sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
      return make_error(sql + ": " + trimmed(PQresultErrorMessage(r.get())));
    return {};
  }

  // The table's primary-key columns, as SQL writes them (test_decoding
  // quotes names the same way).
  Result<std::vector<std::string>> primary_key(const std::string& table) {
    if (auto known = keys_.find(table); known != keys_.end()) return known->second;
    auto names = rows(c_, server_,
                      "SELECT quote_ident(a.attname) FROM pg_index i JOIN pg_attribute a ON "
                      "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = "
                      "$1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
                      {table});
    if (!names) return names.error();
    std::vector<std::string> key;
    for (const auto& row : *names) key.push_back(row[0].value_or(""));
    keys_[table] = key;
    return key;
  }

  PGconn* c_;
  const ServerAddress& server_;
  std::map<std::string, std::vector<std::string>> keys_;
};

}  // namespace

std::string catch_up_slot_name(std::uint32_t database_oid) {
  return kSlotPrefix + std::to_string(database_oid);
}

Result<void> keep_catch_up_slots(const PgConnector& connect, const ServerAddress& primary,
                                 const std::string& admin_database, std::uint64_t received_by_all) {
  auto admin = connect(primary, admin_database);
  if (!admin) return admin.error();
  auto level = rows(admin->get(), primary, "SELECT current_setting('wal_level')");
  if (!level) return level.error();
  const std::string wal_level = level->empty() ? "?" : (*level)[0][0].value_or("?");
  if (wal_level != "logical")
    return make_error(primary.name + " has wal_level = " + wal_level +
                      ", not logical: what only it has cannot be read back after a failover");
  auto dbs = rows(admin->get(), primary,
                  "SELECT d.oid, d.datname, s.confirmed_flush_lsn, s.slot_name IS NOT NULL "
                  "FROM pg_database d LEFT JOIN pg_replication_slots s ON s.slot_name = $1 || "
                  "d.oid WHERE d.datallowconn AND NOT d.datistemplate",
                  {kSlotPrefix});
  if (!dbs) return dbs.error();
  const std::string target = format_lsn(received_by_all);
  std::string errors;
  for (const auto& row : *dbs) {
    const std::string slot = catch_up_slot_name(
        static_cast<std::uint32_t>(std::strtoul(row[0].value_or("0").c_str(), nullptr, 10)));
    const std::string database = row[1].value_or("");
    const bool exists = row[3] == "t";
    if (exists && row[2]) {
      auto confirmed = parse_lsn(*row[2]);
      if (confirmed && *confirmed >= received_by_all) continue;
    }
    auto c = connect(primary, database);
    if (!c) {
      errors += "; " + c.error().message();
      continue;
    }
    if (exists) {
      auto advanced = rows(c->get(), primary,
                           "SELECT pg_replication_slot_advance($1, LEAST($2::pg_lsn, "
                           "pg_current_wal_lsn()))",
                           {slot, target});
      if (advanced) continue;
      const std::string& why = advanced.error().message();
      errors += "; database " + database + ": " + why;
      // A slot whose WAL is gone (kept from another life of this server, or
      // past max_slot_wal_keep_size) can never move again: made afresh.
      const bool lost = why.find("removed") != std::string::npos ||
                        why.find("invalidated") != std::string::npos ||
                        why.find("reserved") != std::string::npos;
      if (lost && rows(c->get(), primary, "SELECT pg_drop_replication_slot($1)", {slot}))
        errors += " (dropped; made again next time)";
      continue;
    }
    // Creating a slot waits for the transactions running at that moment:
    // bounded, and tried again next time.
    auto bounded = rows(c->get(), primary, "SET statement_timeout = 250");
    auto created =
        bounded ? rows(c->get(), primary,
                       "SELECT pg_create_logical_replication_slot($1, 'test_decoding')", {slot})
                : bounded;
    if (!created) errors += "; database " + database + ": " + created.error().message();
  }
  if (!errors.empty()) return make_error(errors.substr(2));
  return {};
}

Result<OldPrimaryCatchUp> apply_from_catch_up_slots(const PgConnector& connect,
                                                    const ServerAddress& old_primary,
                                                    const ServerAddress& new_primary,
                                                    const std::string& admin_database,
                                                    std::uint64_t took_over_at,
                                                    const std::set<std::uint64_t>& replayed) {
  auto admin = connect(old_primary, admin_database);
  if (!admin) return admin.error();
  // Logical decoding needs a server out of recovery: one already rewound
  // (or restored) into a replica no longer holds what only it had.
  auto recovering = rows(admin->get(), old_primary, "SELECT pg_is_in_recovery()");
  if (!recovering) return recovering.error();
  if (!recovering->empty() && (*recovering)[0][0] == "t") {
    // Its slots would only hold WAL there, and move nowhere.
    rows(admin->get(), old_primary,
         "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE "
         "slot_name LIKE $1 || '%'",
         {kSlotPrefix});
    return make_error(old_primary.name +
                      " came back as a replica (rewound already): what only it had is gone");
  }
  auto slots = rows(admin->get(), old_primary,
                    "SELECT s.slot_name, s.database, s.confirmed_flush_lsn FROM "
                    "pg_replication_slots s WHERE s.slot_type = 'logical' AND s.slot_name LIKE "
                    "$1 || '%' AND s.database IS NOT NULL",
                    {kSlotPrefix});
  if (!slots) return slots.error();
  if (slots->empty())
    return make_error(old_primary.name +
                      " holds no catch-up slot (it needs wal_level = logical while primary)");
  // The journal knows full transaction ids, the decoder 32-bit ones: within
  // a failover's few seconds they name the same transactions.
  std::set<std::uint32_t> skip;
  for (auto xid : replayed) skip.insert(static_cast<std::uint32_t>(xid));
  OldPrimaryCatchUp out;
  for (const auto& slot : *slots) {
    const std::string name = slot[0].value_or(""), database = slot[1].value_or("");
    if (slot[2]) {
      auto confirmed = parse_lsn(*slot[2]);
      if (confirmed && *confirmed > took_over_at)
        out.failures.push_back("database " + database + ": its slot had moved past " +
                               format_lsn(took_over_at) + ", where " + new_primary.name +
                               " took over; what lies between cannot be read");
    }
    auto source = connect(old_primary, database);
    if (!source) {
      out.failures.push_back("database " + database + ": " + source.error().message());
      continue;
    }
    auto transactions = peek(source->get(), old_primary, name);
    if (!transactions) {
      out.failures.push_back("database " + database + ": " + transactions.error().message());
      continue;
    }
    std::optional<PgConn> target;
    std::unique_ptr<Applier> applier;
    for (const auto& t : *transactions) {
      if (t.commit_lsn <= took_over_at) continue;
      ++out.errant;
      if (skip.count(t.xid)) {
        ++out.skipped;
        continue;
      }
      if (!target) {
        auto c = connect(new_primary, database);
        if (!c) {
          out.failures.push_back("database " + database + ": " + c.error().message());
          break;
        }
        target = std::move(*c);
        applier = std::make_unique<Applier>(target->get(), new_primary);
      }
      if (auto r = applier->apply(t); r)
        ++out.applied;
      else
        out.failures.push_back("transaction " + std::to_string(t.xid) + " in " + database + ": " +
                               r.error().message());
    }
  }
  // Read once, applied once: a rewound old primary must not keep them, nor
  // hold WAL for them.
  for (const auto& slot : *slots)
    rows(admin->get(), old_primary, "SELECT pg_drop_replication_slot($1)", {slot[0].value_or("")});
  return out;
}

}  // namespace shardgate::replication
