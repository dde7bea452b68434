#include "proxy/txn/decision_log.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "common/rocksdb_store.h"

namespace shardgate::txn {

namespace {

constexpr std::string_view kNodeKey = "node";
constexpr std::string_view kDecisionPrefix = "decision/";

Error log_error(const std::string& what, const rocksdb::Status& s) {
  return make_error("transaction decision log: " + what + ": " + s.ToString());
}

std::string hex(std::uint64_t v, int width) {
  char out[17];
  std::snprintf(out, sizeof out, "%0*llx", width, static_cast<unsigned long long>(v));
  return out;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

DecisionLog::DecisionLog(std::unique_ptr<rocksdb::DB> db, std::string path, std::string node)
    : db_(std::move(db)),
      path_(std::move(path)),
      prefix_("sg_" + node + "_"),
      incarnation_(hex(static_cast<std::uint64_t>(now_ms()), 11)) {}

DecisionLog::~DecisionLog() = default;

Result<std::unique_ptr<DecisionLog>> DecisionLog::open(const std::string& data_dir) {
  auto opened = open_rocksdb_store(data_dir, "transactions", "commit decision log");
  if (!opened) return opened.error();
  std::unique_ptr<rocksdb::DB> db = std::move(*opened);
  const std::string path = data_dir + "/transactions";
  std::string node;
  const rocksdb::Status got = db->Get(rocksdb::ReadOptions(), kNodeKey, &node);
  if (got.IsNotFound()) {
    std::random_device rd;
    const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    node = hex(id & 0xffffffffffffULL, 12);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    const rocksdb::Status put = db->Put(sync, kNodeKey, node);
    if (!put.ok()) return log_error("cannot write the node id", put);
  } else if (!got.ok()) {
    return log_error("cannot read the node id", got);
  }
  return std::unique_ptr<DecisionLog>(new DecisionLog(std::move(db), path, node));
}

std::string DecisionLog::next_gid() {
  const std::uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed);
  return prefix_ + incarnation_ + "_" + hex(n, 1);
}

Result<void> DecisionLog::record_commit(const std::string& gid,
                                        const std::vector<std::string>& shards) {
  config::CommitDecision record;
  for (const auto& s : shards) record.add_shards(s);
  record.set_decided_unix_ms(now_ms());
  std::string bytes;
  if (!record.SerializeToString(&bytes)) return make_error("cannot serialize a decision");
  rocksdb::WriteOptions options;
  options.sync = true;  // phase two starts only once the decision survives a crash
  const rocksdb::Status s = db_->Put(options, std::string(kDecisionPrefix) + gid, bytes);
  if (!s.ok()) return log_error("cannot record the commit of " + gid, s);
  return {};
}

Result<void> DecisionLog::forget(const std::string& gid) {
  const rocksdb::Status s =
      db_->Delete(rocksdb::WriteOptions(), std::string(kDecisionPrefix) + gid);
  if (!s.ok()) return log_error("cannot forget " + gid, s);
  return {};
}

Result<std::vector<Decision>> DecisionLog::decisions() const {
  std::vector<Decision> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kDecisionPrefix); it->Valid() && it->key().starts_with(kDecisionPrefix);
       it->Next()) {
    Decision d;
    d.gid = it->key().ToString().substr(kDecisionPrefix.size());
    if (!d.record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return make_error("transaction decision log: " + it->key().ToString() +
                        " is not a CommitDecision");
    out.push_back(std::move(d));
  }
  if (!it->status().ok()) return log_error("cannot list decisions", it->status());
  return out;
}

bool DecisionLog::decided_commit(const std::string& gid) const {
  std::string bytes;
  return db_->Get(rocksdb::ReadOptions(), std::string(kDecisionPrefix) + gid, &bytes).ok();
}

}  // namespace shardgate::txn
