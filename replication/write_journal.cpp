#include "replication/write_journal.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "common/rocksdb_store.h"

namespace shardgate::replication {
namespace {

// 'j', shard (4 bytes), seq (8 bytes), big-endian: RocksDB's byte order is
// then shard order, then commit order.
std::string key(std::uint32_t shard, std::uint64_t seq) {
  std::string k(13, '\0');
  k[0] = 'j';
  for (int i = 0; i < 4; ++i) k[1 + i] = static_cast<char>((shard >> (24 - 8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) k[5 + i] = static_cast<char>((seq >> (56 - 8 * i)) & 0xff);
  return k;
}

Result<void> checked(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return {};
  return make_error("write journal: " + what + ": " + s.ToString());
}

}  // namespace

WriteJournal::WriteJournal(std::unique_ptr<rocksdb::DB> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

WriteJournal::~WriteJournal() = default;

Result<std::unique_ptr<WriteJournal>> WriteJournal::open(const std::string& dir) {
  auto db = open_rocksdb_store(dir, "journal", "write journal");
  if (!db) return db.error();
  std::unique_ptr<WriteJournal> journal(new WriteJournal(std::move(*db), dir + "/journal"));
  // Numbering goes on past what a previous run stored: the last key of each
  // shard, found by seeking from shard to shard.
  std::uint64_t next = 1;
  std::unique_ptr<rocksdb::Iterator> it(journal->db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(key(0, 0)); it->Valid() && it->key().size() == 13 && it->key()[0] == 'j';) {
    std::uint32_t shard = 0;
    for (int i = 0; i < 4; ++i) shard = shard << 8 | static_cast<unsigned char>(it->key()[1 + i]);
    if (shard == UINT32_MAX) break;
    it->SeekForPrev(key(shard + 1, 0));
    if (!it->Valid()) break;
    std::uint64_t seq = 0;
    for (int i = 0; i < 8; ++i) seq = seq << 8 | static_cast<unsigned char>(it->key()[5 + i]);
    next = std::max(next, seq + 1);
    it->Seek(key(shard + 1, 0));
  }
  journal->next_seq_.store(next);
  return journal;
}

Result<void> WriteJournal::append_next(journal::Entry& entry) {
  entry.set_seq(next_seq_.fetch_add(1, std::memory_order_seq_cst));
  return append(entry);
}

Result<void> WriteJournal::append(const journal::Entry& entry) {
  std::string bytes;
  if (!entry.SerializeToString(&bytes)) return make_error("write journal: cannot encode an entry");
  auto r = checked(db_->Put(rocksdb::WriteOptions(), key(entry.shard(), entry.seq()), bytes),
                   "cannot append " + entry.gtid());
  if (r) appended_.fetch_add(1, std::memory_order_relaxed);
  return r;
}

Result<std::vector<journal::Entry>> WriteJournal::after(std::uint32_t shard,
                                                        std::uint64_t seq) const {
  std::vector<journal::Entry> out;
  if (seq == UINT64_MAX) return out;
  const std::string end = key(shard + 1, 0);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(key(shard, seq + 1)); it->Valid() && it->key().compare(end) < 0; it->Next()) {
    journal::Entry e;
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return make_error("write journal: an entry of shard " + std::to_string(shard) +
                        " cannot be decoded");
    out.push_back(std::move(e));
  }
  if (auto r = checked(it->status(), "cannot read shard " + std::to_string(shard)); !r)
    return r.error();
  return out;
}

Result<void> WriteJournal::forget_through(std::uint32_t shard, std::uint64_t seq) {
  const std::string end = seq == UINT64_MAX ? key(shard + 1, 0) : key(shard, seq + 1);
  return checked(
      db_->DeleteRange(rocksdb::WriteOptions(), db_->DefaultColumnFamily(), key(shard, 0), end),
      "cannot trim shard " + std::to_string(shard));
}

Result<void> WriteJournal::forget_after(std::uint32_t shard, std::uint64_t seq) {
  if (seq == UINT64_MAX) return {};
  return checked(db_->DeleteRange(rocksdb::WriteOptions(), db_->DefaultColumnFamily(),
                                  key(shard, seq + 1), key(shard + 1, 0)),
                 "cannot drop replayed entries of shard " + std::to_string(shard));
}

bool replay_may_differ(std::string_view sql) {
  static constexpr std::array<std::string_view, 14> kDiffering = {
      "RAND(",      "UUID(",      "UUID_SHORT(", "SYSDATE(",  "CONNECTION_ID(",
      "NEXTVAL(",   "NEXT VALUE", "LASTVAL(",    "GET_LOCK(", "FOUND_ROWS(",
      "ROW_COUNT(", "@@",         "USER(",       "VERSION("};
  std::string upper(sql);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return std::any_of(kDiffering.begin(), kDiffering.end(),
                     [&](std::string_view f) { return upper.find(f) != std::string::npos; });
}

}  // namespace shardgate::replication
