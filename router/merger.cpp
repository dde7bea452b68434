#include "router/merger.h"

#include <algorithm>
#include <cstdio>

#include "router/shard_map.h"
#include "router/sql_lexer.h"

namespace shardgate::router {
namespace {

std::optional<long double> as_number(const std::string& s) {
  char* end = nullptr;
  const long double v = std::strtold(s.c_str(), &end);
  if (end == s.c_str()) return std::nullopt;
  return v;
}

// Digits after the decimal point, as the server printed them.
std::size_t scale_of(const std::string& s) {
  const auto dot = s.find('.');
  if (dot == std::string::npos || s.find_first_of("eE") != std::string::npos) return 0;
  return s.size() - dot - 1;
}

std::string format_number(long double v, std::size_t scale) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.*Lf", static_cast<int>(scale), v);
  return buf;
}

// AVG = SUM / COUNT computed in the proxy, with the number of decimals each
// server shows for an average of integers (PostgreSQL 16, MySQL's
// div_precision_increment default 4); the digits beyond may differ from the
// server's own division.
std::string format_quotient(long double v, int decimals) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.*Lf", decimals, v);
  return buf;
}

}  // namespace

Merger::Merger(const MergePlan& plan, std::size_t shards, Dialect dialect)
    : plan_(plan), shards_(shards), dialect_(dialect), ended_(shards, false), heads_(shards) {
  if (plan_.aggregating || plan_.distinct)
    mode_ = Mode::Grouped;
  else if (!plan_.order_by.empty())
    mode_ = Mode::Ordered;
  else
    mode_ = Mode::Concat;
}

Result<void> Merger::set_columns(const std::vector<std::string>& names,
                                 const std::vector<ValueKind>& kinds) {
  kinds_ = kinds;
  const std::size_t visible = plan_.aggregates.size();
  if (names.size() != visible + plan_.avg_counts.size()) {
    // SELECT * (or t.*): the plan did not know the column count.
    if (!plan_.avg_counts.empty() || plan_.aggregating)
      return make_error("the shards answered " + std::to_string(names.size()) +
                        " columns where the statement selects " + std::to_string(visible));
    plan_.aggregates.assign(names.size(), Aggregate::None);
  }
  auto resolve = [&](const ColumnRef& ref, const char* clause) -> Result<std::size_t> {
    if (ref.position > 0) return ref.position - 1;
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < plan_.aggregates.size(); ++i) {
      std::string lower;
      for (char c : names[i]) lower.push_back(dialect_ == Dialect::Mysql ? ascii_lower(c) : c);
      if (lower != ref.name) continue;
      if (found)
        return make_error(std::string(clause) + " " + ref.name +
                          " names several result columns; use its position");
      found = i;
    }
    if (!found)
      return make_error(std::string(clause) + " " + ref.name +
                        " must be a selected column for a query over several shards");
    return *found;
  };
  for (const auto& key : plan_.order_by) {
    auto c = resolve(key.column, "ORDER BY");
    if (!c) return c.error();
    order_columns_.push_back(*c);
  }
  for (const auto& g : plan_.group_by) {
    auto c = resolve(g, "GROUP BY");
    if (!c) return c.error();
    group_columns_.push_back(*c);
  }
  if (plan_.distinct && !plan_.aggregating) {
    group_columns_.clear();
    for (std::size_t i = 0; i < plan_.aggregates.size(); ++i) group_columns_.push_back(i);
  }
  if (plan_.aggregating) {
    // Every plain column must be a grouping column, or groups could not combine it.
    for (std::size_t i = 0; i < plan_.aggregates.size(); ++i) {
      if (plan_.aggregates[i] != Aggregate::None) continue;
      if (std::find(group_columns_.begin(), group_columns_.end(), i) == group_columns_.end())
        return make_error("column " + names[i] +
                          " is neither aggregated nor in GROUP BY, so shards' rows of a group "
                          "cannot be combined");
    }
  }
  return {};
}

std::optional<std::size_t> Merger::wants() const {
  if (finished() || limit_reached()) return std::nullopt;
  switch (mode_) {
    case Mode::Concat:
      if (!queue_.empty() || concat_at_ >= shards_) return std::nullopt;
      return concat_at_;
    case Mode::Ordered:
      for (std::size_t s = 0; s < shards_; ++s)
        if (!heads_[s] && !ended_[s]) return s;
      return std::nullopt;
    case Mode::Grouped:
      for (std::size_t s = 0; s < shards_; ++s)
        if (!ended_[s]) return s;
      return std::nullopt;
  }
  return std::nullopt;
}

void Merger::push(std::size_t shard, Row row) {
  switch (mode_) {
    case Mode::Concat:
      queue_.push_back(std::move(row));
      return;
    case Mode::Ordered:
      heads_[shard] = std::move(row);
      return;
    case Mode::Grouped: {
      std::vector<std::optional<std::string>> key;
      key.reserve(group_columns_.size());
      for (std::size_t c : group_columns_) {
        auto v = row[c];
        // Groups that compare equal in a case-insensitive collation are one.
        if (v && kinds_[c] == ValueKind::TextCi)
          for (char& ch : *v) ch = ascii_lower(ch);
        key.push_back(std::move(v));
      }
      auto [it, inserted] = groups_.try_emplace(std::move(key));
      if (inserted) {
        it->second.values.assign(
            row.begin(), row.begin() + static_cast<std::ptrdiff_t>(plan_.aggregates.size()));
        it->second.avg_count.assign(plan_.avg_counts.size(), 0);
        for (std::size_t a = 0; a < plan_.avg_counts.size(); ++a) {
          const auto& count = row[plan_.avg_counts[a].second];
          it->second.avg_count[a] = count ? std::strtoll(count->c_str(), nullptr, 10) : 0;
        }
      } else {
        combine(it->second, row);
      }
      return;
    }
  }
}

void Merger::end(std::size_t shard) {
  ended_[shard] = true;
  if (mode_ == Mode::Concat && shard == concat_at_) ++concat_at_;
}

int Merger::compare(const std::optional<std::string>& a, const std::optional<std::string>& b,
                    ValueKind kind) const {
  if (!a || !b) {
    if (!a && !b) return 0;
    // PostgreSQL sorts NULL after every value, MySQL before.
    const int null_side = dialect_ == Dialect::Postgres ? 1 : -1;
    return !a ? null_side : -null_side;
  }
  switch (kind) {
    case ValueKind::Integer: {
      const auto x = parse_int64(*a), y = parse_int64(*b);
      if (x && y) return *x < *y ? -1 : (*x > *y ? 1 : 0);
      [[fallthrough]];
    }
    case ValueKind::Number: {
      const auto x = as_number(*a), y = as_number(*b);
      if (x && y) return *x < *y ? -1 : (*x > *y ? 1 : 0);
      break;
    }
    case ValueKind::TextCi: {
      const std::size_t n = std::min(a->size(), b->size());
      for (std::size_t i = 0; i < n; ++i) {
        const char x = ascii_lower((*a)[i]), y = ascii_lower((*b)[i]);
        if (x != y) return static_cast<unsigned char>(x) < static_cast<unsigned char>(y) ? -1 : 1;
      }
      return a->size() < b->size() ? -1 : (a->size() > b->size() ? 1 : 0);
    }
    case ValueKind::Text:
      break;
  }
  const int c = a->compare(*b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

bool Merger::before(const Row& a, const Row& b) const {
  for (std::size_t k = 0; k < order_columns_.size(); ++k) {
    const std::size_t c = order_columns_[k];
    int r = compare(a[c], b[c], kinds_[c]);
    if (plan_.order_by[k].descending) r = -r;
    if (r != 0) return r < 0;
  }
  return false;
}

void Merger::combine(Group& g, const Row& row) {
  for (std::size_t i = 0; i < plan_.aggregates.size(); ++i) {
    auto& acc = g.values[i];
    const auto& v = row[i];
    switch (plan_.aggregates[i]) {
      case Aggregate::None:
        break;
      case Aggregate::Min:
      case Aggregate::Max: {
        if (!v) break;
        const int r = compare(v, acc, kinds_[i]);
        // compare() puts NULL at an end; an absent accumulator takes any value.
        const bool take = !acc || (plan_.aggregates[i] == Aggregate::Min ? r < 0 : r > 0);
        if (take) acc = v;
        break;
      }
      case Aggregate::Count:
      case Aggregate::Sum:
      case Aggregate::Avg: {
        if (!v) break;
        if (!acc) {
          acc = v;
          break;
        }
        const auto x = parse_int64(*acc), y = parse_int64(*v);
        std::int64_t total = 0;
        if (x && y && !__builtin_add_overflow(*x, *y, &total)) {
          acc = std::to_string(total);
        } else {
          const std::size_t scale = std::max(scale_of(*acc), scale_of(*v));
          acc = format_number(*as_number(*acc) + *as_number(*v), scale);
        }
        break;
      }
    }
  }
  for (std::size_t a = 0; a < plan_.avg_counts.size(); ++a) {
    const auto& count = row[plan_.avg_counts[a].second];
    if (count) g.avg_count[a] += std::strtoll(count->c_str(), nullptr, 10);
  }
}

void Merger::finish_groups() {
  groups_done_ = true;
  grouped_.reserve(groups_.size());
  for (auto& [key, g] : groups_) {
    for (std::size_t a = 0; a < plan_.avg_counts.size(); ++a) {
      auto& v = g.values[plan_.avg_counts[a].first];
      if (!v || g.avg_count[a] == 0) {
        v.reset();  // AVG of no rows is NULL
        continue;
      }
      const long double avg = *as_number(*v) / static_cast<long double>(g.avg_count[a]);
      v = format_quotient(avg, dialect_ == Dialect::Postgres ? 16 : 4);
    }
    grouped_.push_back(std::move(g.values));
  }
  groups_.clear();
  if (!order_columns_.empty())
    std::stable_sort(grouped_.begin(), grouped_.end(),
                     [this](const Row& a, const Row& b) { return before(a, b); });
}

std::optional<Row> Merger::emit(Row row) {
  if (skipped_ < plan_.offset) {
    ++skipped_;
    return std::nullopt;
  }
  ++emitted_;
  row.resize(plan_.aggregates.size());  // hidden columns stay in the proxy
  return row;
}

std::optional<Row> Merger::next() {
  while (!limit_reached()) {
    switch (mode_) {
      case Mode::Concat: {
        if (queue_.empty()) return std::nullopt;
        Row row = std::move(queue_.front());
        queue_.erase(queue_.begin());
        if (auto out = emit(std::move(row))) return out;
        break;
      }
      case Mode::Ordered: {
        std::optional<std::size_t> best;
        for (std::size_t s = 0; s < shards_; ++s) {
          if (!heads_[s]) {
            if (!ended_[s]) return std::nullopt;  // its next row may come first
            continue;
          }
          if (!best || before(*heads_[s], *heads_[*best])) best = s;
        }
        if (!best) return std::nullopt;
        Row row = std::move(*heads_[*best]);
        heads_[*best].reset();
        if (auto out = emit(std::move(row))) return out;
        break;
      }
      case Mode::Grouped: {
        if (!groups_done_) {
          if (std::find(ended_.begin(), ended_.end(), false) != ended_.end()) return std::nullopt;
          finish_groups();
        }
        if (grouped_at_ >= grouped_.size()) return std::nullopt;
        if (auto out = emit(std::move(grouped_[grouped_at_++]))) return out;
        break;
      }
    }
  }
  return std::nullopt;
}

bool Merger::finished() const {
  if (limit_reached()) return true;
  switch (mode_) {
    case Mode::Concat:
      return queue_.empty() && concat_at_ >= shards_;
    case Mode::Ordered:
      for (std::size_t s = 0; s < shards_; ++s)
        if (heads_[s] || !ended_[s]) return false;
      return true;
    case Mode::Grouped:
      return groups_done_ && grouped_at_ >= grouped_.size();
  }
  return true;
}

}  // namespace shardgate::router
