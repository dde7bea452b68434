// Online resharding on real servers, one test body for both engines: a
// sandbox of its own with one shard holding 200k rows and one spare, a
// read/write load through the proxy the whole time (single-key updates,
// inserts, reads and two-key transactions, each acknowledged write kept in a
// ledger), `shardctl reshard start/cutover/cleanup`, and then every row is
// checked against the ledger on the shard that owns it. Then the faults:
// a cutover whose verification fails is refused and abort leaves the old
// topology; a proxy killed mid-copy resumes; a failover of the source pauses
// the job until `start` resumes it.
#include <gtest/gtest.h>
#include <mysql.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "router/shard_map.h"
#include "tests/integration/harness.h"

namespace shardgate::it {
namespace {

namespace json = boost::json;

constexpr std::int64_t kRows = 200000;

// The few statements the test needs, over libpq or Connector/C.
class Db {
 public:
  virtual ~Db() = default;
  virtual bool exec(const std::string& sql, std::string* error = nullptr) = 0;
  // Rows of two columns (id, balance); nullopt on error.
  virtual std::optional<std::map<std::int64_t, std::int64_t>> balances(const std::string& sql) = 0;
};

class PgDb final : public Db {
 public:
  explicit PgDb(int port)
      : conn_(PQconnectdb(("host=127.0.0.1 port=" + std::to_string(port) +
                           " user=app password=app dbname=app connect_timeout=10")
                              .c_str())) {}
  bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  bool exec(const std::string& sql, std::string* error) override {
    Res r(PQexec(conn_.get(), sql.c_str()));
    const auto s = PQresultStatus(r.get());
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return true;
    if (error) *error = PQresultErrorMessage(r.get());
    return false;
  }
  std::optional<std::map<std::int64_t, std::int64_t>> balances(const std::string& sql) override {
    Res r(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return std::nullopt;
    std::map<std::int64_t, std::int64_t> out;
    for (int i = 0; i < PQntuples(r.get()); ++i)
      out[std::stoll(PQgetvalue(r.get(), i, 0))] = std::stoll(PQgetvalue(r.get(), i, 1));
    return out;
  }

 private:
  Conn conn_;
};

class MyDb final : public Db {
 public:
  explicit MyDb(int port) : m_(mysql_init(nullptr)) {
    const unsigned timeout = 30;
    mysql_options(m_, MYSQL_OPT_READ_TIMEOUT, &timeout);
    ok_ = mysql_real_connect(m_, "127.0.0.1", "app", "app", "app", port, nullptr, 0) != nullptr;
  }
  ~MyDb() override { mysql_close(m_); }
  bool ok() const { return ok_; }
  bool exec(const std::string& sql, std::string* error) override {
    if (mysql_real_query(m_, sql.data(), sql.size()) != 0) {
      if (error) *error = mysql_error(m_);
      return false;
    }
    MYSQL_RES* res = mysql_store_result(m_);
    if (res) mysql_free_result(res);
    return true;
  }
  std::optional<std::map<std::int64_t, std::int64_t>> balances(const std::string& sql) override {
    if (mysql_real_query(m_, sql.data(), sql.size()) != 0) return std::nullopt;
    MYSQL_RES* res = mysql_store_result(m_);
    if (!res) return std::nullopt;
    std::map<std::int64_t, std::int64_t> out;
    while (MYSQL_ROW row = mysql_fetch_row(res)) out[std::stoll(row[0])] = std::stoll(row[1]);
    mysql_free_result(res);
    return out;
  }

 private:
  MYSQL* m_;
  bool ok_ = false;
};

struct Engine {
  std::string name;  // postgres, mysql
  int base;          // s0 primary, s0 replica, s1 primary, s1 replica
  int proxy, admin;
  std::string fill_sql;  // 200k rows (id, balance = id % 1000)
};

std::unique_ptr<Db> open_db(const Engine& e, int port) {
  if (e.name == "mysql") {
    auto db = std::make_unique<MyDb>(port);
    if (!db->ok()) return nullptr;
    return db;
  }
  auto db = std::make_unique<PgDb>(port);
  if (!db->ok()) return nullptr;
  return db;
}

std::uint64_t hash_of(std::int64_t id) {
  router::KeyValue k;
  k.integer = id;
  return router::key_hash(k);
}

json::object reshard_status(int admin) {
  std::string out;
  run("curl -s http://127.0.0.1:" + std::to_string(admin) + "/api/v1/reshard", &out);
  boost::system::error_code ec;
  auto v = json::parse(out, ec);
  return ec || !v.is_object() ? json::object{} : v.as_object();
}

// The port of the shard's current primary (a failover moves it).
int primary_port(int admin, const std::string& shard) {
  std::string out;
  run("curl -s http://127.0.0.1:" + std::to_string(admin) + "/api/v1/backends", &out);
  boost::system::error_code ec;
  auto v = json::parse(out, ec);
  if (ec || !v.is_object() || !v.as_object().contains("backends")) return -1;
  for (const auto& b : v.as_object().at("backends").as_array()) {
    const auto& o = b.as_object();
    if (o.at("shard").as_string() != shard || o.at("role").as_string() != "primary") continue;
    const std::string address(o.at("address").as_string());
    return std::stoi(address.substr(address.rfind(':') + 1));
  }
  return -1;
}

std::string state_of(int admin) {
  auto o = reshard_status(admin);
  return o.contains("state") ? std::string(o.at("state").as_string()) : "?";
}

// Writes and reads through the proxy until stopped; what was acknowledged
// goes into the ledger.
class Load {
 public:
  Load(const Engine& e, int clients) : engine_(e) {
    for (int t = 0; t < clients; ++t) threads_.emplace_back([this, t] { work(t); });
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::map<std::int64_t, std::int64_t> delta;  // id -> acknowledged increments
  std::set<std::int64_t> inserted;
  std::atomic<std::uint64_t> writes{0}, reads{0};
  std::atomic<std::int64_t> slowest_write_us{0};  // as the clients saw it
  std::vector<std::string> errors;

 private:
  void work(int t) {
    auto db = open_db(engine_, engine_.proxy);
    if (!db) {
      note_error("cannot connect");
      return;
    }
    std::mt19937_64 rng(1000 + t);
    std::int64_t next_insert = 1000000 + t * 100000;
    while (!stop_) {
      const int op = static_cast<int>(rng() % 10);
      const std::int64_t a = 1 + static_cast<std::int64_t>(rng() % kRows);
      const std::int64_t b = 1 + static_cast<std::int64_t>(rng() % kRows);
      std::string error;
      const auto started = std::chrono::steady_clock::now();
      if (op < 4) {
        if (db->exec("UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(a),
                     &error)) {
          add(a);
        } else {
          note_error(error);
        }
      } else if (op < 5) {
        const std::int64_t id = next_insert++;
        if (db->exec("INSERT INTO accounts (id, balance, note) VALUES (" + std::to_string(id) +
                         ", 0, 'new')",
                     &error)) {
          std::lock_guard lock(mutex_);
          inserted.insert(id);
        } else {
          note_error(error);
        }
      } else if (op < 6 && a != b) {
        // Two keys in one transaction: after the cutover they may live on
        // two shards (two-phase commit).
        const bool ok =
            db->exec("BEGIN", &error) &&
            db->exec("UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(a),
                     &error) &&
            db->exec("UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(b),
                     &error) &&
            db->exec("COMMIT", &error);
        if (ok) {
          add(a);
          add(b);
        } else {
          db->exec("ROLLBACK");
          note_error(error);
        }
      } else {
        auto rows =
            db->balances("SELECT id, balance FROM accounts WHERE id = " + std::to_string(a));
        if (!rows || rows->size() != 1)
          note_error(std::to_string(std::chrono::system_clock::now().time_since_epoch().count() /
                                    1000000) +
                     " ms: " + "reading id " + std::to_string(a) + " gave " +
                     (rows ? std::to_string(rows->size()) + " rows" : std::string("an error")));
        ++reads;
        continue;
      }
      ++writes;
      const std::int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - started)
                                  .count();
      std::int64_t seen = slowest_write_us.load();
      while (us > seen && !slowest_write_us.compare_exchange_weak(seen, us)) {
      }
    }
  }
  void add(std::int64_t id) {
    std::lock_guard lock(mutex_);
    ++delta[id];
  }
  void note_error(const std::string& e) {
    std::lock_guard lock(mutex_);
    if (errors.size() < 20) errors.push_back(e);
    if (errors.size() < 20) std::fprintf(stderr, "[ load ] %s\n", e.c_str());
  }
  const Engine& engine_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

class Reshard : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    const Engine& e = GetParam();
    char tmpl[] = "/tmp/shardgate-reshard-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // the servers run as the sandbox's own OS user
    std::string out;
    ASSERT_EQ(sandbox_up(1, &out), 0) << out;
    config_ = dir_ + "/sbx/reshard.yaml";
    run("cp " + dir_ + "/sbx/shardgate.yaml " + config_);
    std::ofstream(config_, std::ios::app)
        << "    sharding:\n      tables:\n        - {name: accounts, column: id}\n";
    proxy_ = start_proxy(config_, e.proxy);
    ASSERT_GT(proxy_, 0);
    {
      // Through the proxy: DDL runs on every shard, the spare too.
      auto db = open_db(e, e.proxy);
      ASSERT_NE(db, nullptr);
      std::string error;
      ASSERT_TRUE(db->exec(
          "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, note text)", &error))
          << error;
    }
    auto source = open_db(e, e.base);
    std::string error;
    ASSERT_TRUE(source->exec(e.fill_sql, &error)) << error;
    // Reads through the proxy go to the replica: it must have the rows first.
    auto replica = open_db(e, e.base + 1);
    ASSERT_NE(replica, nullptr);
    ASSERT_TRUE(wait_until(
        [&] {
          auto rows = replica->balances("SELECT 0, count(*) FROM accounts");
          return rows && rows->begin()->second == kRows;
        },
        60000));
  }
  void TearDown() override {
    if (proxy_ > 0) stop_proxy(proxy_);
    if (dir_.empty()) return;
    // The proxy's log outlives the sandbox, for a failure's post-mortem.
    run("cp " + config_ + "." + std::to_string(GetParam().proxy) + ".log /tmp/shardgate-reshard-" +
        GetParam().name + ".log");
    run(bin("shardctl") + " sandbox down --destroy --dir " + dir_ + "/sbx");
    run("rm -rf " + dir_);
  }

  // One shard and `spares` spares, one replica each (again on a running
  // sandbox: the new spares start).
  int sandbox_up(int spares, std::string* out) {
    const Engine& e = GetParam();
    return run(bin("shardctl") + " sandbox up --engine " + e.name + " --shards 1 --spare-shards " +
                   std::to_string(spares) + " --replicas 1 --base-port " + std::to_string(e.base) +
                   " --proxy-port " + std::to_string(e.proxy) + " --admin-port " +
                   std::to_string(e.admin) + " --dir " + dir_ + "/sbx 2>&1",
               out);
  }

  // SIGKILLs the proxy, adds 1 to `id`'s balance directly on s0's primary
  // while it is down, restarts it and waits until the resumed job has
  // repaired and catches up again: the slice then compares equal.
  void crash_change_and_restart(std::int64_t id) {
    const Engine& e = GetParam();
    ::kill(proxy_, SIGKILL);
    int status = 0;
    ::waitpid(proxy_, &status, 0);
    {
      auto direct = open_db(e, e.base);
      ASSERT_TRUE(direct->exec("UPDATE accounts SET balance = balance + 1 WHERE id = " +
                               std::to_string(id)));
    }
    proxy_ = start_proxy(config_, e.proxy);
    ASSERT_GT(proxy_, 0);
    ASSERT_TRUE(wait_until([&] { return state_of(e.admin) == "catching_up"; }, 60000))
        << state_of(e.admin);
    std::string out;
    ASSERT_EQ(shardctl("reshard verify", &out), 0) << out;
    EXPECT_NE(out.find(" 0 differ"), std::string::npos) << out;
  }

  int shardctl(const std::string& args, std::string* out) {
    return run(bin("shardctl") + " " + args +
                   " --admin 127.0.0.1:" + std::to_string(GetParam().admin) + " 2>&1",
               out);
  }

  // Every row lives on exactly the shard whose range holds its key, and
  // holds what the ledger says. `owner_of_high` is the shard that owns 80-.
  // `isolated` (a key given a shard of its own) lives on `isolated_on`.
  void expect_rows_match(const Load& load, int owner_of_high, int shards = 2,
                         std::optional<std::int64_t> isolated = std::nullopt,
                         int isolated_on = -1) {
    // Shards other than 0 and owner_of_high hold nothing (but the isolated key).
    const Engine& e = GetParam();
    std::map<std::int64_t, std::int64_t> all;
    for (int s = 0; s < shards; ++s) {
      auto db = open_db(e, primary_port(e.admin, "s" + std::to_string(s)));
      ASSERT_NE(db, nullptr);
      auto rows = db->balances("SELECT id, balance FROM accounts");
      ASSERT_TRUE(rows);
      std::uint64_t misplaced = 0, duplicated = 0;
      for (const auto& [id, balance] : *rows) {
        const int owner = isolated && id == *isolated            ? isolated_on
                          : hash_of(id) >= 0x8000000000000000ull ? owner_of_high
                                                                 : 0;
        if (s != owner) ++misplaced;
        if (!all.emplace(id, balance).second) ++duplicated;
      }
      EXPECT_EQ(misplaced, 0u) << "rows on shard s" << s << " that another shard owns";
      EXPECT_EQ(duplicated, 0u) << "rows on both shards";
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kRows) + load.inserted.size());
    std::uint64_t wrong = 0, missing = 0;
    for (std::int64_t id = 1; id <= kRows; ++id) {
      auto it = all.find(id);
      if (it == all.end()) {
        ++missing;
        continue;
      }
      auto d = load.delta.find(id);
      const std::int64_t want = id % 1000 + (d == load.delta.end() ? 0 : d->second);
      if (it->second != want && ++wrong <= 5)
        ADD_FAILURE() << "id " << id << " (slice " << (hash_of(id) >= 0x8000000000000000ull)
                      << ") holds " << it->second << ", the ledger says " << want;
    }
    for (std::int64_t id : load.inserted) missing += all.count(id) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "acknowledged rows lost";
    EXPECT_EQ(wrong, 0u) << "rows whose balance is not what the acknowledged updates made it";
  }

  std::string dir_, config_;
  pid_t proxy_ = -1;
};

TEST_P(Reshard, SplitUnderLoadLosesNothingAndPausesWritesBriefly) {
  const Engine& e = GetParam();
  std::string out;
  ASSERT_EQ(shardctl("reshard plan --split s0 --into s1", &out), 0) << out;
  EXPECT_NE(out.find("split: rows of 80- move from s0 to s1"), std::string::npos) << out;
  Load load(e, 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(shardctl("reshard start --split s0 --into s1 --database app --wait", &out), 0) << out;
  EXPECT_NE(out.find("state: catching_up"), std::string::npos) << out;
  auto status = reshard_status(e.admin);
  EXPECT_GE(status["rows_read"].to_number<std::int64_t>(), kRows);
  EXPECT_GT(status["rows_copied"].to_number<std::int64_t>(), kRows / 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(shardctl("reshard cutover", &out), 0) << out;
  EXPECT_NE(out.find("cut over to topology v2"), std::string::npos) << out;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  load.stop();
  status = reshard_status(e.admin);
  ASSERT_EQ(status["pauses_ms"].as_array().size(), 1u);
  const double pause = status["pauses_ms"].as_array()[0].to_number<double>();
  std::printf(
      "[ reshard ] %s: %.0f rows copied at %.0f rows/s, %llu writes and %llu reads "
      "through the proxy, write pause %.1f ms (slowest write a client saw: %.1f ms), %.0f "
      "keys re-copied\n",
      e.name.c_str(), status["rows_copied"].to_number<double>(),
      status["rows_per_second"].to_number<double>(),
      static_cast<unsigned long long>(load.writes.load()),
      static_cast<unsigned long long>(load.reads.load()), pause,
      load.slowest_write_us.load() / 1000.0, status["keys_applied"].to_number<double>());
  EXPECT_LT(pause, 1500.0);
  EXPECT_TRUE(load.errors.empty())
      << load.errors.size() << " client errors, first: " << load.errors.front();
  EXPECT_GT(load.writes.load(), 100u);
  ASSERT_EQ(shardctl("reshard cleanup", &out), 0) << out;
  EXPECT_NE(out.find("moved rows from s0"), std::string::npos) << out;
  expect_rows_match(load, 1);
  // The new topology is stored: a restarted proxy serves it.
  stop_proxy(proxy_);
  proxy_ = start_proxy(config_, e.proxy);
  ASSERT_GT(proxy_, 0);
  ASSERT_EQ(shardctl("topology --json", &out), 0);
  EXPECT_NE(out.find("\"key_range\":\"80-\""), std::string::npos) << out;
}

TEST_P(Reshard, FaultsAbortResumeAndFailover) {
  const Engine& e = GetParam();
  std::string out;
  // A cutover whose verification fails is refused: a row changed on the
  // source behind the proxy's back is a difference no write explains.
  ASSERT_EQ(shardctl("reshard start --split s0 --into s1 --database app --wait", &out), 0) << out;
  std::int64_t moving = 1;
  while (hash_of(moving) < 0x8000000000000000ull) ++moving;
  {
    auto direct = open_db(e, e.base);
    ASSERT_TRUE(direct->exec("UPDATE accounts SET balance = balance + 1000 WHERE id = " +
                             std::to_string(moving)));
  }
  EXPECT_NE(shardctl("reshard cutover", &out), 0) << out;
  EXPECT_NE(out.find("cutover refused: verification"), std::string::npos) << out;
  ASSERT_EQ(shardctl("reshard abort", &out), 0) << out;
  EXPECT_NE(out.find("the old topology serves on"), std::string::npos) << out;
  {
    auto target = open_db(e, e.base + 2);
    auto rows = target->balances("SELECT id, balance FROM accounts");
    ASSERT_TRUE(rows);
    EXPECT_TRUE(rows->empty()) << "abort leaves no copied row on the target";
  }
  ASSERT_EQ(shardctl("topology --json", &out), 0);
  EXPECT_NE(out.find("\"key_range\":\"none\""), std::string::npos) << out;

  // A proxy killed mid-copy resumes from its checkpoint, and repairs what
  // was written while it was down.
  ASSERT_EQ(shardctl("reshard start --split s0 --into s1 --database app", &out), 0) << out;
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = reshard_status(e.admin);
        return s.contains("rows_read") && s["rows_read"].to_number<std::int64_t>() > 0;
      },
      20000));
  ASSERT_NO_FATAL_FAILURE(crash_change_and_restart(moving));
  auto repaired = [&] {
    return reshard_status(e.admin)["rows_repaired"].to_number<std::int64_t>();
  };
  EXPECT_GE(repaired(), 1) << "the row changed while the proxy was down";

  // Killed again while catching up: it repairs before catching up again.
  const std::int64_t repaired_before = repaired();
  ASSERT_NO_FATAL_FAILURE(crash_change_and_restart(moving));
  EXPECT_GT(repaired(), repaired_before);

  // A failover of the source pauses the job; start resumes it.
  ASSERT_EQ(shardctl("failover --shard s0", &out), 0) << out;
  ASSERT_TRUE(wait_until([&] { return state_of(e.admin) == "paused"; }, 10000))
      << state_of(e.admin);
  EXPECT_NE(std::string(reshard_status(e.admin)["message"].as_string()).find("failed over"),
            std::string::npos)
      << reshard_status(e.admin)["message"];
  // Writes go on while the job is paused; its resume sees them.
  Load load(e, 0);
  {
    auto db = open_db(e, e.proxy);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200; ++i) {
      const std::int64_t id = 1 + static_cast<std::int64_t>(rng() % kRows);
      std::string error;
      ASSERT_TRUE(db->exec(
          "UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(id), &error))
          << error;
      ++load.delta[id];
    }
  }
  ASSERT_EQ(shardctl("reshard start --split s0 --into s1 --database app", &out), 0) << out;
  EXPECT_NE(out.find("resumed"), std::string::npos) << out;
  ASSERT_TRUE(wait_until([&] { return state_of(e.admin) == "catching_up"; }, 60000))
      << state_of(e.admin);
  ASSERT_EQ(shardctl("reshard cutover", &out), 0) << out;
  ASSERT_EQ(shardctl("reshard cleanup", &out), 0) << out;
  // The row changed behind the proxy's back three times: +1000, +1, +1.
  load.delta[moving] += 1002;
  expect_rows_match(load, 1);
}

// The cutover's pause holds only writes into the moving slice. A
// transaction holding such a write keeps the cutover in its pause (the drain
// waits for it): meanwhile reads of the slice and writes elsewhere are
// answered at once, and a new write into the slice waits, then lands on the
// target once the transaction commits and the cutover publishes.
TEST_P(Reshard, TheCutoverPausesOnlyWritesIntoTheSlice) {
  const Engine& e = GetParam();
  std::string out;
  ASSERT_EQ(shardctl("reshard start --split s0 --into s1 --database app --wait", &out), 0) << out;
  std::vector<std::int64_t> moving;
  std::int64_t staying = 0;
  for (std::int64_t id = 1; moving.size() < 2 || staying == 0; ++id) {
    if (hash_of(id) < 0x8000000000000000ull) {
      if (staying == 0) staying = id;
    } else if (moving.size() < 2) {
      moving.push_back(id);
    }
  }
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  auto holder = open_db(e, e.proxy);
  ASSERT_NE(holder, nullptr);
  std::string error;
  ASSERT_TRUE(holder->exec("BEGIN", &error)) << error;
  ASSERT_TRUE(holder->exec(
      "UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(moving[0]), &error))
      << error;
  int cutover_rc = -1;
  std::string cutover_out;
  std::thread cutover([&] { cutover_rc = shardctl("reshard cutover", &cutover_out); });
  const bool paused = wait_until(
      [&] { return reshard_status(e.admin)["writes_paused"] == json::value(true); }, 30000);
  if (!paused) {
    holder->exec("COMMIT");
    cutover.join();
    FAIL() << "the cutover never paused: " << cutover_out;
  }
  EXPECT_EQ(reshard_status(e.admin)["sessions_holding_writes"].to_number<int>(), 1);
  // Not held: a read of the slice, a write outside it.
  auto other = open_db(e, e.proxy);
  ASSERT_NE(other, nullptr);
  auto started = std::chrono::steady_clock::now();
  auto read =
      other->balances("SELECT id, balance FROM accounts WHERE id = " + std::to_string(moving[1]));
  EXPECT_TRUE(read && read->size() == 1);
  EXPECT_TRUE(other->exec(
      "UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(staying), &error))
      << error;
  const double unpaused_ms = ms_since(started);
  // Held: a new write into the slice.
  std::atomic<bool> written{false};
  bool write_ok = false;
  std::thread writer([&] {
    auto db = open_db(e, e.proxy);
    write_ok = db && db->exec("UPDATE accounts SET balance = balance + 1 WHERE id = " +
                              std::to_string(moving[1]));
    written = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(written.load()) << "a write into the slice went on during the pause";
  EXPECT_EQ(reshard_status(e.admin)["writes_paused"], json::value(true));
  ASSERT_TRUE(holder->exec("COMMIT", &error)) << error;
  cutover.join();
  writer.join();
  EXPECT_LT(unpaused_ms, 1000.0) << "a read and a write outside the slice waited for the pause";
  EXPECT_EQ(cutover_rc, 0) << cutover_out;
  EXPECT_TRUE(write_ok);
  // Both writes into the slice are on the target, which owns it now.
  auto target = open_db(e, primary_port(e.admin, "s1"));
  ASSERT_NE(target, nullptr);
  auto rows = target->balances("SELECT id, balance FROM accounts WHERE id IN (" +
                               std::to_string(moving[0]) + ", " + std::to_string(moving[1]) + ")");
  ASSERT_TRUE(rows);
  for (std::int64_t id : moving) EXPECT_EQ((*rows)[id], id % 1000 + 1) << "id " << id;
  auto source = open_db(e, primary_port(e.admin, "s0"));
  rows = source->balances("SELECT id, balance FROM accounts WHERE id = " + std::to_string(staying));
  ASSERT_TRUE(rows);
  EXPECT_EQ((*rows)[staying], staying % 1000 + 1);
}

// A shard started next to the running sandbox (`sandbox up` with one more
// spare) and announced to the running proxy (`reshard add-shard`) takes a
// split like a spare of the config: no restart anywhere. Then one key of s0
// gets the other spare to itself, and s0 keeps the slices on both sides.
TEST_P(Reshard, AShardAddedWhileRunningTakesASplitThenAKeyIsIsolated) {
  const Engine& e = GetParam();
  std::string out;
  ASSERT_EQ(sandbox_up(2, &out), 0) << out;
  EXPECT_NE(out.find("adding"), std::string::npos) << out;
  {
    auto db = open_db(e, e.base + 4);
    ASSERT_NE(db, nullptr) << "the new shard's primary runs";
    std::string error;
    ASSERT_TRUE(db->exec(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, note text)", &error))
        << error;
  }
  EXPECT_NE(shardctl("reshard start --split s0 --into s2 --database app", &out), 0)
      << "the proxy does not know s2 yet: " << out;
  ASSERT_EQ(shardctl("reshard add-shard --shard s2 --config " + dir_ + "/sbx/shardgate.yaml", &out),
            0)
      << out;
  EXPECT_NE(out.find("shard s2 added as a spare"), std::string::npos) << out;
  EXPECT_NE(shardctl("reshard add-shard --shard s2 --config " + dir_ + "/sbx/shardgate.yaml", &out),
            0)
      << "twice: " << out;
  // The monitor probes the new servers.
  ASSERT_TRUE(wait_until([&] { return primary_port(e.admin, "s2") == e.base + 4; }, 10000));
  Load load(e, 3);
  ASSERT_EQ(shardctl("reshard start --split s0 --into s2 --database app --wait", &out), 0) << out;
  ASSERT_EQ(shardctl("reshard cutover", &out), 0) << out;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  load.stop();
  EXPECT_TRUE(load.errors.empty()) << load.errors.front();
  ASSERT_EQ(shardctl("reshard cleanup", &out), 0) << out;
  expect_rows_match(load, 2, 3);

  // One key of s0 gets the spare s1 to itself; s0 keeps both sides of it.
  std::int64_t hot = 1;
  while (hash_of(hot) >= 0x8000000000000000ull) ++hot;
  ASSERT_EQ(shardctl("reshard start --isolate --table accounts --key " + std::to_string(hot) +
                         " --into s1 --database app --wait",
                     &out),
            0)
      << out;
  {
    auto db = open_db(e, e.proxy);
    for (int i = 0; i < 50; ++i) {
      std::string error;
      ASSERT_TRUE(db->exec(
          "UPDATE accounts SET balance = balance + 1 WHERE id = " + std::to_string(hot), &error))
          << error;
      ++load.delta[hot];
    }
  }
  ASSERT_EQ(shardctl("reshard cutover", &out), 0) << out;
  ASSERT_EQ(shardctl("reshard cleanup", &out), 0) << out;
  EXPECT_NE(out.find("removed 1 moved rows"), std::string::npos) << out;
  {
    std::string topology;
    run("curl -s http://127.0.0.1:" + std::to_string(e.admin) + "/api/v1/topology", &topology);
    boost::system::error_code ec;
    auto v = json::parse(topology, ec);
    ASSERT_FALSE(ec) << topology;
    for (const auto& shard : v.as_object().at("shards").as_array()) {
      const std::string name(shard.as_object().at("name").as_string());
      const std::string ranges(shard.as_object().at("key_range").as_string());
      if (name == "s0") {
        EXPECT_NE(ranges.find(','), std::string::npos) << "two slices: " << ranges;
      }
      if (name == "s1") {
        EXPECT_EQ(ranges.find(','), std::string::npos) << ranges;
      }
    }
  }
  expect_rows_match(load, 2, 3, hot, 1);
  // The key's reads and writes now go to s1.
  auto db = open_db(e, e.proxy);
  std::string error;
  EXPECT_TRUE(
      db->exec("UPDATE accounts SET note = 'alone' WHERE id = " + std::to_string(hot), &error))
      << error;
  auto on_s1 = open_db(e, primary_port(e.admin, "s1"));
  auto rows = on_s1->balances("SELECT id, balance FROM accounts WHERE note = 'alone'");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Engines, Reshard,
    ::testing::Values(
        Engine{
            "postgres", 28432, 28532, 28533,
            "INSERT INTO accounts SELECT g, g % 1000, 'n' || g FROM generate_series(1, 200000) g"},
        Engine{"mysql", 28632, 28732, 28733,
               "INSERT INTO accounts SELECT seq, seq % 1000, CONCAT('n', seq) FROM "
               "seq_1_to_200000"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace shardgate::it
