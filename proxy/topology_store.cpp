#include "proxy/topology_store.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>

#include "common/rocksdb_store.h"
#include "router/shard_map.h"

namespace shardgate {

namespace {

std::string current_key(const std::string& cluster) {
  return "topology/" + cluster + "/current";
}

// Zero-padded so that keys sort by version.
std::string history_key(const std::string& cluster, std::uint64_t version) {
  char v[24];
  std::snprintf(v, sizeof v, "%020llu", static_cast<unsigned long long>(version));
  return "topology/" + cluster + "/history/" + v;
}

Error store_error(const std::string& what, const rocksdb::Status& s) {
  return make_error("topology store: " + what + ": " + s.ToString());
}

}  // namespace

TopologyStore::TopologyStore(std::unique_ptr<rocksdb::DB> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

TopologyStore::~TopologyStore() = default;

Result<std::unique_ptr<TopologyStore>> TopologyStore::open(const std::string& dir) {
  auto db = open_rocksdb_store(dir, "topology", "topology store");
  if (!db) return db.error();
  return std::unique_ptr<TopologyStore>(new TopologyStore(std::move(*db), dir + "/topology"));
}

Result<std::optional<config::TopologyRecord>> TopologyStore::current(
    const std::string& cluster) const {
  std::string bytes;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), current_key(cluster), &bytes);
  if (s.IsNotFound()) return std::optional<config::TopologyRecord>{};
  if (!s.ok()) return store_error("cannot read " + current_key(cluster), s);
  config::TopologyRecord record;
  if (!record.ParseFromString(bytes))
    return make_error("topology store: " + current_key(cluster) + " is not a TopologyRecord");
  return std::optional<config::TopologyRecord>(std::move(record));
}

Result<std::vector<config::TopologyRecord>> TopologyStore::history(
    const std::string& cluster) const {
  std::vector<config::TopologyRecord> out;
  const std::string prefix = "topology/" + cluster + "/history/";
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    config::TopologyRecord record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return make_error("topology store: " + it->key().ToString() + " is not a TopologyRecord");
    out.push_back(std::move(record));
  }
  if (!it->status().ok()) return store_error("cannot list " + prefix, it->status());
  return out;
}

Result<void> TopologyStore::publish(const config::TopologyRecord& record) {
  std::string bytes;
  if (!record.SerializeToString(&bytes)) return make_error("topology store: cannot serialize");
  const std::string& cluster = record.cluster().name();
  rocksdb::WriteBatch batch;
  batch.Put(current_key(cluster), bytes);
  batch.Put(history_key(cluster, record.version()), bytes);
  rocksdb::WriteOptions options;
  options.sync = true;  // a published version must survive a crash
  const rocksdb::Status s = db_->Write(options, &batch);
  if (!s.ok()) return store_error("cannot write version " + std::to_string(record.version()), s);
  return {};
}

std::string cluster_digest(const config::Cluster& cluster) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    cluster.SerializeToCodedStream(&out);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(bytes.data(), bytes.size())));
  return hex;
}

namespace {

// What the control plane decided since the config file was written, kept
// through a config change: which member is primary, which are fenced, each
// shard's epoch (failover), its key range (resharding), and shards added
// while running. Otherwise an operator who edits anything else and restarts
// would hand writes back to a primary that was failed over, under an epoch
// its fence no longer outranks, and route keys to shards that gave them up.
// A shard new in the file starts as a spare: keys given to it there would
// route to a shard that holds none of their rows (resharding moves them).
// Returns whether anything differed from the config.
bool keep_control_plane_decisions(const config::Cluster& stored, config::Cluster& cluster) {
  bool kept = false;
  for (auto& s : *cluster.mutable_shards()) {
    bool known = false;
    for (const auto& was : stored.shards()) known |= was.name() == s.name();
    if (known || s.key_range() == router::kSpareKeyRange) continue;
    s.set_key_range(std::string(router::kSpareKeyRange));
    kept = true;
  }
  for (const auto& was : stored.shards()) {
    config::Shard* now = nullptr;
    for (auto& s : *cluster.mutable_shards())
      if (s.name() == was.name()) now = &s;
    if (!now) {
      *cluster.add_shards() = was;
      kept = true;
      continue;
    }
    kept |= now->epoch() != was.epoch() || now->key_range() != was.key_range();
    now->set_epoch(was.epoch());
    now->set_key_range(was.key_range());
    // Roles carry over only when the stored primary is still configured:
    // a shard must keep exactly one.
    bool primary_configured = false;
    for (const auto& b : was.backends())
      if (b.role() == config::Backend::PRIMARY)
        for (const auto& c : now->backends()) primary_configured |= c.name() == b.name();
    if (!primary_configured) continue;
    for (auto& c : *now->mutable_backends()) {
      for (const auto& b : was.backends()) {
        if (b.name() != c.name()) continue;
        kept |= c.role() != b.role() || c.fenced() != b.fenced();
        c.set_role(b.role());
        c.set_fenced(b.fenced());
      }
    }
  }
  return kept;
}

}  // namespace

Result<config::TopologyRecord> reconcile_with_config(TopologyStore& store,
                                                     const config::Cluster& from_config) {
  auto stored = store.current(from_config.name());
  if (!stored) return stored.error();
  const std::string digest = cluster_digest(from_config);
  if (*stored && (*stored)->config_digest() == digest) return **stored;
  config::TopologyRecord record;
  record.set_version(*stored ? (*stored)->version() + 1 : 1);
  *record.mutable_cluster() = from_config;
  const bool kept =
      *stored && keep_control_plane_decisions((*stored)->cluster(), *record.mutable_cluster());
  record.set_config_digest(digest);
  record.set_updated_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  record.set_reason(!*stored ? "seeded from the configuration file"
                    : kept   ? "the configuration file changed; primaries, fencing, epochs, key "
                               "ranges and added shards kept from version " +
                                 std::to_string((*stored)->version())
                           : "the configuration file changed");
  if (auto r = store.publish(record); !r) return r.error();
  return record;
}

}  // namespace shardgate
