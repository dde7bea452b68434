// Opening one of the proxy's RocksDB stores in data_dir (the topology, the
// commit decisions, the write journal): each its own database, one process
// at a time.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/result.h"

namespace shardgate {

// Opens (creating) data_dir/name. `what` names the store in errors ("write
// journal"); a store another process holds gets an error that says so.
inline Result<std::unique_ptr<rocksdb::DB>> open_rocksdb_store(const std::string& data_dir,
                                                               const std::string& name,
                                                               const std::string& what) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return make_error("cannot create data_dir " + data_dir + ": " + ec.message());
  rocksdb::Options options;
  options.create_if_missing = true;
  options.keep_log_file_num = 4;
  rocksdb::DB* raw = nullptr;
  const std::string path = data_dir + "/" + name;
  const rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (s.ok()) return std::unique_ptr<rocksdb::DB>(raw);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos)
    return make_error(
        what + " " + path +
        " is in use by another shardgate (each proxy needs its own data_dir): " + s.ToString());
  return make_error(what + ": cannot open " + path + ": " + s.ToString());
}

}  // namespace shardgate
