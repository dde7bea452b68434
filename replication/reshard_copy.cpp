#include "replication/reshard_copy.h"

#include <xxhash.h>

#include <map>

namespace shardgate::replication {

namespace {

std::string column_list(ReshardConn& c, const TableShape& s) {
  std::string out;
  for (const auto& col : s.columns) out += (out.empty() ? "" : ", ") + c.ident(col);
  return out;
}

std::string pk_columns(ReshardConn& c, const TableShape& s) {
  std::string out;
  for (std::size_t p : s.primary_key) out += (out.empty() ? "" : ", ") + c.ident(s.columns[p]);
  return s.primary_key.size() == 1 ? out : "(" + out + ")";
}

std::vector<Cell> pk_of(const TableShape& s, const Row& row) {
  std::vector<Cell> out;
  for (std::size_t p : s.primary_key) out.push_back(row[p]);
  return out;
}

std::string pk_value(ReshardConn& c, const std::vector<Cell>& pk) {
  std::string out;
  for (const Cell& v : pk) out += (out.empty() ? "" : ", ") + c.literal(v);
  return pk.size() == 1 ? out : "(" + out + ")";
}

std::string pk_text(const std::vector<Cell>& pk) {
  std::string out;
  for (const Cell& v : pk) out += (out.empty() ? "" : ",") + (v ? *v : std::string("NULL"));
  return out;
}

std::string select_from(ReshardConn& c, const TableShape& s) {
  return "SELECT " + column_list(c, s) + " FROM " + c.ident(s.name);
}

std::uint64_t row_hash(const Row& row) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (const Cell& v : row) {
    const char tag = v ? 'v' : 'n';
    XXH3_64bits_update(st, &tag, 1);
    if (v) {
      const std::uint64_t n = v->size();
      XXH3_64bits_update(st, &n, sizeof n);
      XXH3_64bits_update(st, v->data(), v->size());
    }
  }
  const std::uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

std::uint64_t row_bytes(const Row& row) {
  std::uint64_t n = 0;
  for (const Cell& v : row) n += v ? v->size() : 0;
  return n;
}

// Rows after `after` (empty: from the start), in primary-key order, at most
// `limit` (0: all).
Result<std::vector<Row>> rows_after(ReshardConn& c, const TableShape& s,
                                    const std::vector<Cell>& after, std::size_t limit,
                                    const std::vector<Cell>* through = nullptr) {
  std::string sql = select_from(c, s);
  std::string where;
  if (!after.empty()) where = pk_columns(c, s) + " > " + pk_value(c, after);
  if (through)
    where += (where.empty() ? "" : " AND ") + pk_columns(c, s) + " <= " + pk_value(c, *through);
  if (!where.empty()) sql += " WHERE " + where;
  sql += " ORDER BY ";
  std::string order;
  for (std::size_t p : s.primary_key) order += (order.empty() ? "" : ", ") + c.ident(s.columns[p]);
  sql += order;
  if (limit) sql += " LIMIT " + std::to_string(limit);
  return c.query(sql);
}

// Replaces the target's rows with these primary keys by `rows` (a subset of
// them: keys without a row are deleted), in one transaction.
Result<void> replace_rows(ReshardConn& target, const TableShape& s,
                          const std::vector<std::vector<Cell>>& pks, const std::vector<Row>& rows) {
  if (pks.empty() && rows.empty()) return {};
  if (auto ok = target.begin(); !ok) return ok;
  auto fail = [&](Result<void> r) {
    target.rollback();
    return r;
  };
  for (std::size_t i = 0; i < pks.size(); i += 500) {
    std::string in;
    for (std::size_t j = i; j < std::min(pks.size(), i + 500); ++j)
      in += (in.empty() ? "" : ", ") + pk_value(target, pks[j]);
    if (auto ok = target.exec("DELETE FROM " + target.ident(s.name) + " WHERE " +
                              pk_columns(target, s) + " IN (" + in + ")");
        !ok)
      return fail(ok);
  }
  for (std::size_t i = 0; i < rows.size(); i += 500) {
    std::string values;
    for (std::size_t j = i; j < std::min(rows.size(), i + 500); ++j) {
      std::string tuple;
      for (const Cell& v : rows[j]) tuple += (tuple.empty() ? "" : ", ") + target.literal(v);
      values += (values.empty() ? "(" : ", (") + tuple + ")";
    }
    if (auto ok = target.exec("INSERT INTO " + target.ident(s.name) + " (" +
                              column_list(target, s) + ") VALUES " + values);
        !ok)
      return fail(ok);
  }
  return target.commit();
}

}  // namespace

bool row_in_slice(const SliceTable& t, const Row& row) {
  const Cell& key = row[t.shape.key_column];
  if (!key) return false;  // NULL keys live nowhere by routing; they stay put
  auto value = router::key_from_text(t.table, *key);
  return value && t.slice.contains(router::key_hash(*value));
}

Result<ChunkResult> copy_chunk(ReshardConn& source, ReshardConn& target, const SliceTable& t,
                               const std::vector<Cell>& after_pk, std::size_t limit) {
  auto rows = rows_after(source, t.shape, after_pk, limit);
  if (!rows) return rows.error();
  ChunkResult out;
  out.read = rows->size();
  out.done = rows->size() < limit;
  out.last_pk = rows->empty() ? after_pk : pk_of(t.shape, rows->back());
  std::vector<Row> moving;
  std::vector<std::vector<Cell>> pks;
  for (Row& row : *rows) {
    if (!row_in_slice(t, row)) continue;
    out.bytes += row_bytes(row);
    pks.push_back(pk_of(t.shape, row));
    moving.push_back(std::move(row));
  }
  out.copied = moving.size();
  if (auto ok = replace_rows(target, t.shape, pks, moving); !ok) return ok.error();
  return out;
}

Result<CompareResult> compare_slice(ReshardConn& source, ReshardConn& target, const SliceTable& t,
                                    bool repair, std::size_t chunk) {
  CompareResult out;
  std::vector<Cell> after;
  for (;;) {
    auto src = rows_after(source, t.shape, after, chunk);
    if (!src) return src.error();
    const bool last = src->size() < chunk;
    std::vector<Cell> through;
    if (!last) through = pk_of(t.shape, src->back());
    auto dst = rows_after(target, t.shape, after, 0, last ? nullptr : &through);
    if (!dst) return dst.error();
    // By primary key text: the slice's rows on each side.
    std::map<std::string, std::pair<std::uint64_t, const Row*>> want, have;
    for (const Row& r : *src) {
      if (!row_in_slice(t, r)) continue;
      const std::uint64_t h = row_hash(r);
      out.source_checksum += h;
      ++out.source_rows;
      want[pk_text(pk_of(t.shape, r))] = {h, &r};
    }
    for (const Row& r : *dst) {
      if (!row_in_slice(t, r)) continue;
      const std::uint64_t h = row_hash(r);
      out.target_checksum += h;
      ++out.target_rows;
      have[pk_text(pk_of(t.shape, r))] = {h, &r};
    }
    std::vector<std::vector<Cell>> fix_pks;
    std::vector<Row> fix_rows;
    auto differs = [&](const std::string& pk, const Row& any, const Row* source_row) {
      ++out.differing;
      if (out.examples.size() < 5) out.examples.push_back(pk);
      out.differing_keys.push_back(any[t.shape.key_column].value_or(""));
      fix_pks.push_back(pk_of(t.shape, any));
      if (source_row) fix_rows.push_back(*source_row);
    };
    for (const auto& [pk, w] : want) {
      auto it = have.find(pk);
      if (it == have.end() || it->second.first != w.first) differs(pk, *w.second, w.second);
    }
    for (const auto& [pk, h] : have)
      if (!want.count(pk)) differs(pk, *h.second, nullptr);
    if (repair && !fix_pks.empty()) {
      if (auto ok = replace_rows(target, t.shape, fix_pks, fix_rows); !ok) return ok.error();
      out.repaired += fix_pks.size();
    }
    if (last) return out;
    after = std::move(through);
  }
}

Result<std::uint64_t> copy_keys(ReshardConn& source, ReshardConn& target, const SliceTable& t,
                                const std::vector<std::string>& keys) {
  std::uint64_t written = 0;
  const std::string key_column = source.ident(t.shape.columns[t.shape.key_column]);
  for (std::size_t i = 0; i < keys.size(); i += 500) {
    std::string in_source, in_target;
    for (std::size_t j = i; j < std::min(keys.size(), i + 500); ++j) {
      in_source += (in_source.empty() ? "" : ", ") + source.literal(keys[j]);
      in_target += (in_target.empty() ? "" : ", ") + target.literal(keys[j]);
    }
    auto rows = source.query(select_from(source, t.shape) + " WHERE " + key_column + " IN (" +
                             in_source + ")");
    if (!rows) return rows.error();
    if (auto ok = target.begin(); !ok) return ok.error();
    auto ok =
        target.exec("DELETE FROM " + target.ident(t.shape.name) + " WHERE " +
                    target.ident(t.shape.columns[t.shape.key_column]) + " IN (" + in_target + ")");
    if (ok && !rows->empty()) {
      std::string values;
      for (const Row& r : *rows) {
        std::string tuple;
        for (const Cell& v : r) tuple += (tuple.empty() ? "" : ", ") + target.literal(v);
        values += (values.empty() ? "(" : ", (") + tuple + ")";
      }
      ok = target.exec("INSERT INTO " + target.ident(t.shape.name) + " (" +
                       column_list(target, t.shape) + ") VALUES " + values);
    }
    if (ok) ok = target.commit();
    if (!ok) {
      target.rollback();
      return ok.error();
    }
    written += rows->size();
  }
  return written;
}

Result<std::uint64_t> delete_slice(ReshardConn& conn, const SliceTable& t, std::size_t chunk) {
  std::uint64_t deleted = 0;
  std::vector<Cell> after;
  for (;;) {
    auto rows = rows_after(conn, t.shape, after, chunk);
    if (!rows) return rows.error();
    std::vector<std::vector<Cell>> pks;
    for (const Row& r : *rows)
      if (row_in_slice(t, r)) pks.push_back(pk_of(t.shape, r));
    if (auto ok = replace_rows(conn, t.shape, pks, {}); !ok) return ok.error();
    deleted += pks.size();
    if (rows->size() < chunk) return deleted;
    after = pk_of(t.shape, rows->back());
  }
}

}  // namespace shardgate::replication
