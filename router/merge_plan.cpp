#include "router/merge_plan.h"

#include <algorithm>
#include <span>

#include "router/sql_lexer.h"

namespace shardgate::router {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

bool is_name(const Token& t) {
  return t.kind == TokenKind::Word || t.kind == TokenKind::QuotedIdent;
}

std::string lower_name(const Token& t, Dialect dialect) {
  std::string out;
  if (t.kind == TokenKind::Word) {
    for (char c : t.text) out.push_back(ascii_lower(c));
    return out;
  }
  const std::string_view inner = t.text.substr(1, t.text.size() - 2);
  for (char c : inner) out.push_back(dialect == Dialect::Mysql ? ascii_lower(c) : c);
  return out;
}

bool keyword_in(const Token& t, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(),
                     [&](std::string_view w) { return is_keyword(t, w); });
}

// Functions whose value depends on rows of several shards: only those the
// merger can combine may appear, and only as a whole select-list item.
Aggregate aggregate_named(const Token& t) {
  if (is_keyword(t, "count")) return Aggregate::Count;
  if (is_keyword(t, "sum")) return Aggregate::Sum;
  if (is_keyword(t, "min")) return Aggregate::Min;
  if (is_keyword(t, "max")) return Aggregate::Max;
  if (is_keyword(t, "avg")) return Aggregate::Avg;
  return Aggregate::None;
}

bool other_aggregate(const Token& t) {
  return keyword_in(t, {"array_agg",        "string_agg",
                        "group_concat",     "bool_and",
                        "bool_or",          "every",
                        "bit_and",          "bit_or",
                        "bit_xor",          "stddev",
                        "stddev_pop",       "stddev_samp",
                        "variance",         "var_pop",
                        "var_samp",         "json_agg",
                        "jsonb_agg",        "json_object_agg",
                        "jsonb_object_agg", "json_arrayagg",
                        "json_objectagg",   "percentile_cont",
                        "percentile_disc",  "mode",
                        "xmlagg",           "corr",
                        "covar_pop",        "covar_samp",
                        "regr_slope"});
}

class Planner {
 public:
  Planner(std::string_view sql, Dialect dialect, std::vector<Token> tokens)
      : sql_(sql), dialect_(dialect), t_(std::move(tokens)), depth_(t_.size()) {
    int depth = 0;
    for (std::size_t i = 0; i < t_.size(); ++i) {
      if (t_[i].kind == TokenKind::RParen) depth = std::max(0, depth - 1);
      depth_[i] = depth;
      if (t_[i].kind == TokenKind::LParen) ++depth;
    }
  }

  Result<MergePlan> plan() {
    while (!t_.empty() && t_.back().kind == TokenKind::Semicolon) {
      t_.pop_back();
      depth_.pop_back();
    }
    if (t_.empty() || !is_keyword(t_[0], "select"))
      return refuse("only SELECT statements run on several shards");
    for (std::size_t i = 0; i < t_.size(); ++i) {
      if (depth_[i] != 0) continue;
      const Token& w = t_[i];
      if (w.kind == TokenKind::Semicolon) return refuse("several statements in one query");
      if (keyword_in(w, {"union", "intersect", "except"}))
        return refuse("UNION, INTERSECT and EXCEPT are not combined across shards");
      if (keyword_in(w, {"having", "window", "fetch", "into", "procedure"}))
        return refuse(std::string(w.text) + " is not combined across shards yet");
      if (keyword_in(w, {"for", "lock"}))
        return refuse("locking reads (FOR UPDATE / FOR SHARE) do not run on several shards");
      if (is_keyword(w, "over")) return refuse("window functions are not combined across shards");
    }
    std::size_t i = 1;
    if (i < t_.size() && is_keyword(t_[i], "distinct")) {
      plan_.distinct = true;
      ++i;
      if (i < t_.size() && is_keyword(t_[i], "on"))
        return refuse("DISTINCT ON is not combined across shards");
    } else if (i < t_.size() && is_keyword(t_[i], "all")) {
      ++i;
    }
    const std::size_t list_begin = i;
    const std::size_t from = find_top(list_begin, {"from"});
    const std::size_t list_end = from == kNone ? clause_end(list_begin) : from;
    if (auto r = read_select_list(list_begin, list_end); !r) return r.error();
    const std::size_t group = find_top(list_end, {"group"});
    const std::size_t order = find_top(list_end, {"order"});
    const std::size_t limit = find_top(list_end, {"limit", "offset"});
    if (group != kNone) {
      if (auto r = read_columns(group + 2, clause_end(group + 2), plan_.group_by); !r)
        return r.error();
      plan_.aggregating = true;
    }
    if (order != kNone) {
      if (auto r = read_order(order + 2, clause_end(order + 2)); !r) return r.error();
    }
    if (limit != kNone) {
      if (auto r = read_limit(limit); !r) return r.error();
    }
    if (plan_.aggregating && has_star_)
      return refuse("SELECT * with aggregates is not combined across shards");
    // Rows of one group may come from every shard: shards must not cut them.
    const bool push_limit = !plan_.aggregating && !plan_.distinct && plan_.limit.has_value();
    std::vector<std::pair<std::size_t, std::string>> edits;  // text offset -> insertion
    std::vector<std::pair<std::size_t, std::size_t>> cuts;   // [begin, end) offsets removed
    for (const auto& [avg_name, args] : avg_items_) {
      cuts.emplace_back(offset(avg_name), offset(avg_name) + t_[avg_name].text.size());
      edits.emplace_back(offset(avg_name), "sum");
      hidden_.push_back("count" + args);
    }
    std::string hidden;
    for (const std::string& h : hidden_) hidden += ", " + h;
    if (!hidden.empty()) edits.emplace_back(end_offset(list_end - 1), hidden);
    if (limit != kNone) cuts.emplace_back(offset(limit), end_offset(limit_end_ - 1));
    if (plan_.aggregating && order != kNone)
      cuts.emplace_back(offset(order), end_offset(clause_end(order + 2) - 1));
    std::string tail;
    if (push_limit) tail = " LIMIT " + std::to_string(*plan_.limit + plan_.offset);
    plan_.shard_sql = rewrite(edits, cuts) + tail;
    return plan_;
  }

 private:
  Error refuse(const std::string& why) const {
    return make_error("a statement over several shards must be one the proxy can combine: " + why);
  }

  std::size_t offset(std::size_t token) const {
    return static_cast<std::size_t>(t_[token].text.data() - sql_.data());
  }
  std::size_t end_offset(std::size_t token) const { return offset(token) + t_[token].text.size(); }

  std::size_t find_top(std::size_t from, std::initializer_list<std::string_view> words) const {
    for (std::size_t i = from; i < t_.size(); ++i)
      if (depth_[i] == 0 && keyword_in(t_[i], words)) return i;
    return kNone;
  }

  // The end of a clause that starts at b: the next top-level clause word.
  std::size_t clause_end(std::size_t b) const {
    for (std::size_t i = b; i < t_.size(); ++i)
      if (depth_[i] == 0 && keyword_in(t_[i], {"from", "where", "group", "order", "limit", "offset",
                                               "having", "window", "for", "lock"}))
        return i;
    return t_.size();
  }

  std::string text_of(std::size_t b, std::size_t e) const {
    if (b >= e) return {};
    return std::string(sql_.substr(offset(b), end_offset(e - 1) - offset(b)));
  }

  // Normalized text of tokens (lower-case words, single spaces) for matching
  // ORDER BY expressions against select-list items.
  std::string normalized(std::size_t b, std::size_t e) const {
    std::string out;
    for (std::size_t i = b; i < e; ++i) {
      if (!out.empty()) out.push_back(' ');
      for (char c : t_[i].text) out.push_back(t_[i].kind == TokenKind::Word ? ascii_lower(c) : c);
    }
    return out;
  }

  Result<void> read_select_list(std::size_t b, std::size_t e) {
    std::size_t start = b;
    for (std::size_t i = b; i <= e; ++i) {
      if (i < e && !(t_[i].kind == TokenKind::Comma && depth_[i] == 0)) continue;
      if (auto r = read_item(start, i); !r) return r;
      start = i + 1;
    }
    return {};
  }

  // One select-list item in [b, e): an aggregate call (optionally aliased) or
  // an expression without aggregates.
  Result<void> read_item(std::size_t b, std::size_t e) {
    if (b >= e) return refuse("an empty select-list item");
    Aggregate agg = Aggregate::None;
    std::size_t call_end = kNone;
    if (e - b >= 3 && t_[b + 1].kind == TokenKind::LParen) {
      agg = aggregate_named(t_[b]);
      if (agg != Aggregate::None) {
        call_end = b + 1;
        while (call_end < e && !(t_[call_end].kind == TokenKind::RParen && depth_[call_end] == 0))
          ++call_end;
        if (call_end == e) return refuse("an unbalanced aggregate call");
        if (is_keyword(t_[b + 2], "distinct"))
          return refuse(std::string(t_[b].text) + "(DISTINCT ...) is not combined across shards");
        // What may follow the call: an alias.
        std::size_t k = call_end + 1;
        if (k < e && is_keyword(t_[k], "as")) ++k;
        if (k < e && is_name(t_[k])) ++k;
        if (k != e)
          return refuse("an aggregate inside an expression (" + text_of(b, e) +
                        ") is not combined across shards");
      }
    }
    for (std::size_t i = b; i < e; ++i) {
      if (i + 1 < e && t_[i + 1].kind == TokenKind::LParen && call_end == kNone &&
          (aggregate_named(t_[i]) != Aggregate::None || other_aggregate(t_[i])))
        return refuse(std::string(t_[i].text) + "(...) in " + text_of(b, e) +
                      " is not combined across shards");
      if (i + 1 < e && t_[i + 1].kind == TokenKind::LParen && other_aggregate(t_[i]))
        return refuse(std::string(t_[i].text) + "(...) is not combined across shards");
      if (t_[i].kind == TokenKind::Operator && t_[i].text == "*" && depth_[i] == 0 &&
          (i == b || t_[i - 1].kind == TokenKind::Dot))
        has_star_ = true;
    }
    if (agg != Aggregate::None) plan_.aggregating = true;
    if (agg == Aggregate::Avg) {
      avg_items_.emplace_back(b, text_of(b + 1, call_end + 1));
      plan_.avg_counts.emplace_back(plan_.aggregates.size(), kNone);
    }
    item_text_.push_back(normalized(b, call_end == kNone ? e : call_end + 1));
    plan_.aggregates.push_back(agg);
    return {};
  }

  // GROUP BY / ORDER BY targets: positions or (qualified) column names.
  Result<ColumnRef> column_ref(std::size_t b, std::size_t e, const char* clause) const {
    ColumnRef ref;
    if (e == b + 1 && t_[b].kind == TokenKind::Number) {
      ref.position = std::strtoull(std::string(t_[b].text).c_str(), nullptr, 10);
      if (ref.position == 0 || ref.position > plan_.aggregates.size())
        return refuse(std::string(clause) + " position " + std::string(t_[b].text) +
                      " is not in the select list");
      return ref;
    }
    std::size_t last = b;
    bool name = b < e && is_name(t_[b]);
    for (std::size_t i = b + 1; name && i < e; i += 2) {
      name = t_[i].kind == TokenKind::Dot && i + 1 < e && is_name(t_[i + 1]);
      last = i + 1;
    }
    if (name) {
      ref.name = lower_name(t_[last], dialect_);
      return ref;
    }
    // An expression: it must be a select-list item, written the same way.
    const std::string text = normalized(b, e);
    for (std::size_t k = 0; k < item_text_.size(); ++k)
      if (item_text_[k] == text) {
        ref.position = k + 1;
        return ref;
      }
    return refuse(std::string(clause) + " " + text_of(b, e) +
                  " must name a selected column (or its position)");
  }

  Result<void> read_columns(std::size_t b, std::size_t e, std::vector<ColumnRef>& out) {
    std::size_t start = b;
    for (std::size_t i = b; i <= e; ++i) {
      if (i < e && !(t_[i].kind == TokenKind::Comma && depth_[i] == 0)) continue;
      auto ref = column_ref(start, i, "GROUP BY");
      if (!ref) return ref.error();
      out.push_back(std::move(*ref));
      start = i + 1;
    }
    return {};
  }

  Result<void> read_order(std::size_t b, std::size_t e) {
    std::size_t start = b;
    for (std::size_t i = b; i <= e; ++i) {
      if (i < e && !(t_[i].kind == TokenKind::Comma && depth_[i] == 0)) continue;
      std::size_t end = i;
      OrderKey key;
      if (end > start && keyword_in(t_[end - 1], {"first", "last"}))
        return refuse("NULLS FIRST / NULLS LAST is not combined across shards yet");
      if (end > start && keyword_in(t_[end - 1], {"asc", "desc"})) {
        key.descending = is_keyword(t_[end - 1], "desc");
        --end;
      }
      auto ref = column_ref(start, end, "ORDER BY");
      if (!ref) return ref.error();
      key.column = std::move(*ref);
      plan_.order_by.push_back(std::move(key));
      start = i + 1;
    }
    return {};
  }

  Result<std::uint64_t> number_at(std::size_t i) const {
    if (i >= t_.size() || t_[i].kind != TokenKind::Number ||
        t_[i].text.find_first_not_of("0123456789") != std::string_view::npos)
      return refuse("LIMIT and OFFSET must be integer literals");
    return std::strtoull(std::string(t_[i].text).c_str(), nullptr, 10);
  }

  // LIMIT n [OFFSET m] | OFFSET m [LIMIT n] | LIMIT ALL | MySQL LIMIT m, n.
  Result<void> read_limit(std::size_t i) {
    while (i < t_.size()) {
      if (is_keyword(t_[i], "limit")) {
        if (i + 1 < t_.size() && is_keyword(t_[i + 1], "all")) {
          i += 2;
          continue;
        }
        auto n = number_at(i + 1);
        if (!n) return n.error();
        if (i + 3 < t_.size() && t_[i + 2].kind == TokenKind::Comma) {
          auto count = number_at(i + 3);
          if (!count) return count.error();
          plan_.offset = *n;
          plan_.limit = *count;
          i += 4;
        } else {
          plan_.limit = *n;
          i += 2;
        }
      } else if (is_keyword(t_[i], "offset")) {
        auto m = number_at(i + 1);
        if (!m) return m.error();
        plan_.offset = *m;
        i += 2;
        if (i < t_.size() && keyword_in(t_[i], {"row", "rows"})) ++i;
      } else {
        return refuse("unexpected " + std::string(t_[i].text) + " after LIMIT/OFFSET");
      }
    }
    limit_end_ = i;
    return {};
  }

  std::string rewrite(std::vector<std::pair<std::size_t, std::string>> edits,
                      std::vector<std::pair<std::size_t, std::size_t>> cuts) const {
    std::sort(edits.begin(), edits.end());
    std::sort(cuts.begin(), cuts.end());
    std::string out;
    std::size_t pos = 0, e = 0;
    for (const auto& [b, end] : cuts) {
      while (e < edits.size() && edits[e].first <= b) {
        out.append(sql_.substr(pos, edits[e].first - pos));
        out += edits[e].second;
        pos = edits[e].first;
        ++e;
      }
      out.append(sql_.substr(pos, b - pos));
      pos = end;
    }
    while (e < edits.size()) {
      out.append(sql_.substr(pos, edits[e].first - pos));
      out += edits[e].second;
      pos = edits[e].first;
      ++e;
    }
    std::size_t stop = t_.empty() ? 0 : end_offset(t_.size() - 1);
    if (stop > pos) out.append(sql_.substr(pos, stop - pos));
    while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
    return out;
  }

  std::string_view sql_;
  Dialect dialect_;
  std::vector<Token> t_;
  std::vector<int> depth_;
  MergePlan plan_;
  bool has_star_ = false;
  std::vector<std::string> item_text_;
  std::vector<std::pair<std::size_t, std::string>> avg_items_;  // "avg" token, "(args)"
  std::vector<std::string> hidden_;
  std::size_t limit_end_ = 0;
};

}  // namespace

Result<MergePlan> plan_merge(std::string_view sql, Dialect dialect) {
  std::vector<Token> tokens;
  SqlLexer lexer(sql, dialect);
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) return make_error("shardgate cannot read this statement");
    if (t.kind != TokenKind::Comment) tokens.push_back(t);
  }
  auto plan = Planner(sql, dialect, std::move(tokens)).plan();
  if (!plan) return plan;
  // Hidden COUNT columns follow the visible ones, in AVG order.
  std::size_t next = plan->aggregates.size();
  for (auto& [item, count_column] : plan->avg_counts) count_column = next++;
  return plan;
}

}  // namespace shardgate::router
