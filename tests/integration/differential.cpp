#include "tests/integration/differential.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace shardgate::it {

namespace {

// Numbers compare as numbers (an AVG the proxy computed may differ from the
// server's own in digits past the 12th); everything else exactly.
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* ea = nullptr;
  char* eb = nullptr;
  const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
  if (a.empty() || b.empty() || *ea != '\0' || *eb != '\0') return false;
  return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(y));
}

bool same_table(Table a, Table b, bool ordered) {
  if (!ordered) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
  }
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (std::size_t j = 0; j < a[i].size(); ++j)
      if (!same_value(a[i][j], b[i][j])) return false;
  }
  return true;
}

std::string shown(const Table& t) {
  std::string out;
  for (const auto& row : t) {
    for (const auto& v : row) out += v + "|";
    out += "\n";
  }
  return out;
}

}  // namespace

int run_differential_workload(const DifferentialSide& sharded, const DifferentialSide& single,
                              const DifferentialDialect& dialect, unsigned seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto note = [&]() -> std::string {
    const int n = pick(0, static_cast<int>(dialect.notes.size()));
    return n == static_cast<int>(dialect.notes.size()) ? "NULL" : "'" + dialect.notes[n] + "'";
  };
  auto both = [&](const std::string& sql) {
    std::string e1, e2;
    EXPECT_TRUE(sharded.exec(sql, &e1)) << sql << " through shardgate: " << e1;
    EXPECT_TRUE(single.exec(sql, &e2)) << sql << " direct: " << e2;
  };
  int compared = 0;
  auto compare = [&](const std::string& sql, bool ordered) {
    std::string e1, e2;
    auto a = sharded.rows(sql, &e1);
    auto b = single.rows(sql, &e2);
    ++compared;
    if (!a || !b) {
      ADD_FAILURE() << sql << "\nthrough shardgate: " << (a ? "ok" : e1)
                    << "\ndirect: " << (b ? "ok" : e2);
      return;
    }
    EXPECT_TRUE(same_table(*a, *b, ordered)) << sql << "\nshardgate:\n"
                                             << shown(*a) << "one database:\n"
                                             << shown(*b);
  };
  int next_id = 1;
  auto insert = [&](const std::string& user, int total, const std::string& note_sql) {
    both("INSERT INTO orders (id, user_id, total, note) VALUES (" + std::to_string(next_id++) +
         ", " + user + ", " + std::to_string(total) + ", " + note_sql + ")");
  };
  for (int i = 0; i < 400; ++i) insert(std::to_string(pick(1, 60)), pick(-100, 1000), note());
  for (int round = 0; round < 6; ++round) {
    for (int k = 0; k < 8; ++k) {
      const std::string u = std::to_string(pick(1, 60));
      compare("SELECT id, total, note FROM orders WHERE user_id = " + u + " ORDER BY id", true);
      compare("SELECT count(*), sum(total) FROM orders WHERE user_id = " + u, true);
    }
    const std::string x = std::to_string(pick(-100, 1000));
    compare("SELECT id, user_id, total FROM orders WHERE total > " + x, false);
    compare(
        "SELECT id, total FROM orders ORDER BY total DESC, id " + dialect.limit(pick(0, 20), 10),
        true);
    compare("SELECT user_id, id FROM orders ORDER BY user_id, id LIMIT 25", true);
    compare("SELECT count(*), sum(total), min(total), max(total) FROM orders", true);
    compare("SELECT avg(total) FROM orders", true);
    compare("SELECT note, count(*), sum(total), avg(total) FROM orders GROUP BY note ORDER BY note",
            true);
    compare("SELECT note, max(total) AS top FROM orders GROUP BY note ORDER BY top DESC LIMIT 2",
            true);
    compare("SELECT DISTINCT note FROM orders ORDER BY note", true);
    compare("SELECT DISTINCT user_id FROM orders WHERE total < " + x, false);
    compare("SELECT id FROM orders WHERE user_id IN (1, 2, 3, 4, 5, 6, 7, 8) ORDER BY id", true);
    compare("SELECT count(*) FROM orders WHERE note IS NULL", true);
    // Writes by key, transactions on one shard and over two (committed or
    // rolled back), then read again.
    for (int k = 0; k < 10; ++k) {
      const std::string u = std::to_string(pick(1, 60));
      switch (pick(0, 5)) {
        case 0:
          both("UPDATE orders SET total = total + 7 WHERE user_id = " + u);
          break;
        case 1:
          both("DELETE FROM orders WHERE user_id = " + u + " AND total < 0");
          break;
        case 2:
          both(dialect.begin);
          insert(u, pick(0, 50), "'" + dialect.notes[1] + "'");
          both("UPDATE orders SET note = '" + dialect.notes[2] + "' WHERE user_id = " + u +
               " AND total < 10");
          both("COMMIT");
          break;
        case 3: {
          const std::string v = std::to_string(pick(1, 60));
          both(dialect.begin);
          both("UPDATE orders SET total = total - 5 WHERE user_id = " + u);
          both("UPDATE orders SET total = total + 5 WHERE user_id = " + v);
          insert(v, pick(0, 50), "'" + dialect.notes[0] + "'");
          // A read over every shard inside the transaction sees its writes.
          compare("SELECT count(*), sum(total) FROM orders", true);
          both(pick(0, 2) == 0 ? "ROLLBACK" : "COMMIT");
          break;
        }
        case 4: {
          // Writes over several shards: one INSERT of rows for three users,
          // one UPDATE of an IN list.
          const std::string v = std::to_string(pick(1, 60)), w = std::to_string(pick(1, 60));
          std::string rows;
          for (const std::string* user : {&u, &v, &w}) {
            rows += std::string(rows.empty() ? "" : ", ") + "(" + std::to_string(next_id++) + ", " +
                    *user + ", " + std::to_string(pick(0, 99)) + ", NULL)";
          }
          both("INSERT INTO orders (id, user_id, total, note) VALUES " + rows);
          both("UPDATE orders SET total = total + 1 WHERE user_id IN (" + u + ", " + v + ", " + w +
               ")");
          break;
        }
        default:
          insert(u, pick(-100, 1000), "NULL");
      }
    }
  }
  return compared;
}

}  // namespace shardgate::it
