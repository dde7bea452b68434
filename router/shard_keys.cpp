// Sharding-key extraction over tokens. Each statement (and each subquery, set
// operation branch and statement of a multi-statement text) is a "level": the
// sharded tables named at its top paren depth, the key predicates of its WHERE
// and ON clauses (top-level conjuncts only: an OR makes them unusable) and,
// for INSERT, the key column of every VALUES row.
#include "router/shard_keys.h"

#include <algorithm>
#include <numeric>
#include <span>

#include "router/classify_internal.h"
#include "router/sql_lexer.h"

namespace shardgate::router {
namespace {

using Span = std::span<const Token>;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

bool is_name(const Token& t) {
  return t.kind == TokenKind::Word || t.kind == TokenKind::QuotedIdent;
}

// An identifier as the server compares it: PostgreSQL folds unquoted names and
// keeps quoted ones; MySQL compares table and column names case-insensitively.
std::string name_of(const Token& t, Dialect dialect) {
  std::string out;
  if (t.kind == TokenKind::Word) {
    for (char c : t.text) out.push_back(ascii_lower(c));
    return out;
  }
  const char quote = t.text.front();
  const std::string_view inner = t.text.substr(1, t.text.size() - 2);
  for (std::size_t i = 0; i < inner.size(); ++i) {
    const char c = inner[i];
    if (c == quote && i + 1 < inner.size() && inner[i + 1] == quote) ++i;
    out.push_back(dialect == Dialect::Mysql ? ascii_lower(c) : c);
  }
  return out;
}

std::string_view last_component(std::string_view name) {
  const auto dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

bool keyword_in(const Token& t, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(),
                     [&](std::string_view w) { return is_keyword(t, w); });
}

// Words that end a WHERE or ON clause at its own paren depth.
bool ends_clause(const Token& t) {
  if (t.kind == TokenKind::Comma || t.kind == TokenKind::Semicolon) return true;
  return keyword_in(
      t, {"where",         "group",     "order",  "limit",  "having", "returning", "for",
          "union",         "intersect", "except", "window", "offset", "fetch",     "lock",
          "join",          "inner",     "left",   "right",  "full",   "cross",     "natural",
          "straight_join", "on",        "using",  "set",    "into",   "procedure"});
}

// Words after a table name that are not its alias.
bool not_alias(const Token& t) {
  if (t.kind == TokenKind::QuotedIdent) return false;
  if (t.kind != TokenKind::Word) return true;
  return ends_clause(t) ||
         keyword_in(t, {"values", "value",  "select",  "default",   "as",   "tablesample",
                        "use",    "ignore", "force",   "partition", "do",   "only",
                        "with",   "from",   "natural", "outer",     "when", "then",
                        "else",   "end",    "and",     "or",        "not"});
}

// Literals a statement shape abstracts over: numbers and plainly quoted
// strings ('..', and MySQL's ".."); E'', $$..$$, X'' are part of the shape.
bool is_literal(const Token& t, Dialect dialect) {
  if (t.kind == TokenKind::Number) return true;
  if (t.kind != TokenKind::String) return false;
  const char q = t.text.front();
  return q == '\'' || (q == '"' && dialect == Dialect::Mysql);
}

// The value of a literal token; nullopt for a string with a backslash, whose
// value depends on server settings.
std::optional<std::string> literal_value(const Token& t, Dialect dialect) {
  if (t.kind == TokenKind::Number) return std::string(t.text);
  (void)dialect;
  const char q = t.text.front();
  const std::string_view inner = t.text.substr(1, t.text.size() - 2);
  if (inner.find('\\') != std::string_view::npos) return std::nullopt;
  std::string out;
  for (std::size_t k = 0; k < inner.size(); ++k) {
    if (inner[k] == q && k + 1 < inner.size() && inner[k + 1] == q) ++k;
    out.push_back(inner[k]);
  }
  return out;
}

// One occurrence of a sharded or reference table at a level.
struct Ref {
  const ShardedTable* table = nullptr;  // null for a reference table
  std::string name;                     // last component, as compared
  std::string alias;
  std::vector<KeyExpr> keys;
  bool keyed = false;
  std::size_t group = 0;  // union-find parent: refs joined on their keys
};

class Analyzer {
 public:
  Analyzer(Span tokens, Dialect dialect, const Topology& topology)
      : t_(tokens),
        dialect_(dialect),
        topo_(topology),
        depth_(tokens.size()),
        param_(tokens.size()),
        literal_(tokens.size(), -1) {
    int depth = 0;
    std::uint32_t question_marks = 0;
    std::int32_t literals = 0;
    for (std::size_t i = 0; i < t_.size(); ++i) {
      if (is_literal(t_[i], dialect_)) literal_[i] = literals++;
      if (t_[i].kind == TokenKind::RParen) depth = std::max(0, depth - 1);
      depth_[i] = depth;
      if (t_[i].kind == TokenKind::LParen) ++depth;
      if (t_[i].kind == TokenKind::Param) {
        if (t_[i].text.front() == '?') {
          param_[i] = question_marks++;
        } else {
          std::uint32_t n = 0;
          for (char c : t_[i].text.substr(1)) n = n * 10 + static_cast<std::uint32_t>(c - '0');
          param_[i] = n > 0 ? n - 1 : 0;
        }
      }
    }
  }

  ShardAnalysis text() {
    ShardAnalysis out;
    std::size_t begin = 0;
    int parts = 0;
    for (std::size_t i = 0; i <= t_.size(); ++i) {
      if (i < t_.size() && t_[i].kind != TokenKind::Semicolon) continue;
      if (i > begin) {
        ShardAnalysis part = level(begin, i);
        combine(out, std::move(part), parts > 0,
                "one of several statements in this query reads or writes sharded table");
        ++parts;
      }
      begin = i + 1;
    }
    return out;
  }

 private:
  // ---- levels ----

  // A statement or subquery in [b, e): split at set operators first.
  ShardAnalysis level(std::size_t b, std::size_t e) {
    const int d = b < e ? depth_[b] : 0;
    std::size_t start = b;
    std::vector<std::pair<std::size_t, std::size_t>> branches;
    for (std::size_t i = b; i < e; ++i) {
      if (depth_[i] == d && keyword_in(t_[i], {"union", "intersect", "except"})) {
        branches.emplace_back(start, i);
        start = i + 1;
        while (start < e && keyword_in(t_[start], {"all", "distinct"})) ++start;
      }
    }
    if (branches.empty()) return query(b, e);
    branches.emplace_back(start, e);
    ShardAnalysis out;
    for (std::size_t k = 0; k < branches.size(); ++k) {
      combine(out, query(branches[k].first, branches[k].second), k > 0,
              "a UNION/INTERSECT/EXCEPT branch reads sharded table");
    }
    return out;
  }

  // One query block without set operators.
  ShardAnalysis query(std::size_t b, std::size_t e) {
    ShardAnalysis out;
    if (b >= e) return out;
    const int d = depth_[b];
    if (keyword_in(t_[b], {"explain", "describe", "desc"})) {
      for (std::size_t i = b + 1; i < e; ++i)
        if (depth_[i] == d && keyword_in(t_[i], {"select", "insert", "update", "delete", "replace",
                                                 "with", "values", "table"}))
          return level(i, e);
    }
    std::vector<Ref> refs;
    // Subqueries are levels of their own; their tables are not this level's.
    for (std::size_t i = b; i < e; ++i) {
      if (t_[i].kind != TokenKind::LParen || depth_[i] != d) continue;
      const std::size_t close = matching(i, e);
      if (close == kNone) {
        out.refusal = "the statement's parentheses do not balance";
        return out;
      }
      if (i + 1 < close && keyword_in(t_[i + 1], {"select", "with", "values", "table", "insert",
                                                  "update", "delete", "replace"})) {
        combine(out, level(i + 1, close), true, "a subquery reads sharded table");
      } else if (sharded_name_inside(i + 1, close)) {
        out.refusal =
            "a sharded table is named inside parentheses that shardgate does not read "
            "(a parenthesized join?): write the join without parentheses";
        return out;
      }
      i = close;
    }
    std::size_t verb = b;
    if (is_keyword(t_[b], "with")) {
      verb = kNone;
      for (std::size_t i = b + 1; i < e && verb == kNone; ++i)
        if (depth_[i] == d && keyword_in(t_[i], {"select", "insert", "update", "delete", "replace",
                                                 "values", "table", "merge"}))
          verb = i;
      if (verb == kNone) return out;
    }
    const Token& v = t_[verb];
    if (is_keyword(v, "insert") || is_keyword(v, "replace")) {
      insert(verb, e, out);
      return out;
    }
    const bool dml = keyword_in(v, {"update", "delete", "merge"});
    const bool read = keyword_in(v, {"select", "values", "table"});
    collect_refs(b, e, d, refs);
    if (refs.empty()) return out;
    if (is_keyword(v, "copy")) {
      const bool from = std::any_of(t_.begin() + static_cast<std::ptrdiff_t>(b),
                                    t_.begin() + static_cast<std::ptrdiff_t>(e),
                                    [](const Token& t) { return is_keyword(t, "from"); });
      if (from && refs.front().table != nullptr) {
        out.refusal = "COPY into sharded table " + refs.front().table->name +
                      " is not supported: load it with INSERT statements that give " +
                      refs.front().table->column;
        return out;
      }
    }
    if (!dml && !read && !is_keyword(v, "copy")) {
      // DDL, TRUNCATE, LOCK ...: every shard holds the table.
      out.writes = true;
      for (const Ref& r : refs) {
        if (r.table == nullptr) {
          out.writes_reference = true;
          out.scope = std::max(out.scope, ShardScope::Reference);
        } else {
          out.scope = ShardScope::AllShards;
          if (!out.keyless) out.keyless = r.table;
        }
      }
      return out;
    }
    if (dml) {
      out.writes = true;
      if (refs.front().table == nullptr) out.writes_reference = true;
      if (auto why = key_assignment(b, e, d, refs)) {
        out.refusal = *why;
        return out;
      }
    }
    for (std::size_t i = b; i < e; ++i) {
      if (depth_[i] == d && (is_keyword(t_[i], "where") || is_keyword(t_[i], "on")))
        conjuncts(i + 1, e, d, refs);
      if (depth_[i] == d && is_keyword(t_[i], "using") && i + 1 < e &&
          t_[i + 1].kind == TokenKind::LParen)
        using_columns(i + 1, e, refs);
    }
    settle(refs, out);
    return out;
  }

  // INSERT/REPLACE [modifiers] [INTO] table [(columns)] VALUES (..), (..) | SET c = v, ..
  void insert(std::size_t verb, std::size_t e, ShardAnalysis& out) {
    const int d = depth_[verb];
    std::size_t i = verb + 1;
    while (i < e && keyword_in(t_[i], {"low_priority", "delayed", "high_priority", "ignore", "into",
                                       "only"}))
      ++i;
    if (i >= e || !is_name(t_[i])) return;
    while (i + 2 < e && t_[i + 1].kind == TokenKind::Dot && is_name(t_[i + 2])) i += 2;
    const std::string name = name_of(t_[i], dialect_);
    const ShardedTable* table = find_sharded(name);
    const bool reference = table == nullptr && find_reference(name);
    ++i;
    // The rows' source: a SELECT reading other tables is its own level.
    std::vector<Ref> source;
    collect_refs(i, e, d, source);
    if (!table) {
      out.writes = reference;
      out.writes_reference = reference;
      if (reference) out.scope = ShardScope::Reference;
      if (std::any_of(source.begin(), source.end(), [](const Ref& r) { return r.table; }))
        out.refusal = "INSERT into " + name + " from sharded table rows is not supported";
      return;
    }
    out.writes = true;
    const std::string where = "INSERT into sharded table " + table->name;
    if (i < e && is_keyword(t_[i], "as")) i += 2;  // PostgreSQL: INSERT INTO t AS alias
    std::size_t key_pos = kNone;
    if (i < e && t_[i].kind == TokenKind::LParen) {
      const std::size_t close = matching(i, e);
      if (close == kNone) {
        out.refusal = "the statement's parentheses do not balance";
        return;
      }
      std::size_t pos = 0;
      for (std::size_t k = i + 1; k < close; ++k) {
        if (t_[k].kind == TokenKind::Comma) {
          ++pos;
        } else if (is_name(t_[k]) && name_of(t_[k], dialect_) == table->column) {
          key_pos = pos;
        }
      }
      i = close + 1;
    } else if (i < e && is_keyword(t_[i], "set")) {
      insert_set(i + 1, e, *table, out);
      return;
    }
    if (i < e && keyword_in(t_[i], {"values", "value"})) {
      if (key_pos == kNone) {
        out.refusal = where + " must list its columns, including its sharding key " + table->column;
        return;
      }
      insert_rows(i + 1, e, *table, key_pos, out);
    } else {
      out.refusal = where + " needs VALUES rows that give " + table->column +
                    " (INSERT ... SELECT and DEFAULT VALUES are not supported)";
      return;
    }
    if (out.refusal) return;
    // ON DUPLICATE KEY UPDATE c = .. / ON CONFLICT .. DO UPDATE SET c = ..
    std::vector<Ref> target(1);
    target[0].table = table;
    target[0].name = std::string(last_component(table->name));
    for (std::size_t k = i; k < e; ++k) {
      if (depth_[k] != d) continue;
      const bool dup = is_keyword(t_[k], "update") && k > 0 && is_keyword(t_[k - 1], "key");
      if (dup || is_keyword(t_[k], "set")) {
        if (auto why = assignment_list(k + 1, e, d, target)) {
          out.refusal = *why;
          return;
        }
      }
    }
  }

  void insert_rows(std::size_t i, std::size_t e, const ShardedTable& table, std::size_t key_pos,
                   ShardAnalysis& out) {
    std::size_t row = 0;
    while (i < e && t_[i].kind == TokenKind::LParen) {
      ++row;
      const std::size_t close = matching(i, e);
      if (close == kNone) {
        out.refusal = "the statement's parentheses do not balance";
        return;
      }
      std::size_t pos = 0, start = i + 1;
      bool found = false;
      for (std::size_t k = i + 1; k <= close; ++k) {
        const bool boundary =
            k == close || (t_[k].kind == TokenKind::Comma && depth_[k] == depth_[i] + 1);
        if (!boundary) continue;
        if (pos == key_pos) {
          KeyExpr key;
          if (value_at(start, k, table, key) != k) {
            out.refusal = "row " + std::to_string(row) + " of the INSERT into " + table.name +
                          " gives its sharding key " + table.column +
                          " as an expression: give a literal or a parameter";
            return;
          }
          out.keys.push_back(std::move(key));
          found = true;
        }
        ++pos;
        start = k + 1;
      }
      if (!found) {
        out.refusal = "row " + std::to_string(row) + " of the INSERT into " + table.name +
                      " has no value for its sharding key " + table.column;
        return;
      }
      i = close + 1;
      if (i < e && t_[i].kind == TokenKind::Comma) ++i;
    }
    if (row == 0) {
      out.refusal = "INSERT into sharded table " + table.name + " needs VALUES rows";
      return;
    }
    out.scope = ShardScope::Keys;
  }

  // MySQL INSERT .. SET c = v, ..: the key's assignment is its row.
  void insert_set(std::size_t i, std::size_t e, const ShardedTable& table, ShardAnalysis& out) {
    const int d = depth_[i - 1];
    for (std::size_t k = i; k + 2 < e; ++k) {
      if (depth_[k] != d || !is_name(t_[k]) || name_of(t_[k], dialect_) != table.column) continue;
      const bool start = k == i || t_[k - 1].kind == TokenKind::Comma;
      if (!start || t_[k + 1].kind != TokenKind::Operator || t_[k + 1].text != "=") continue;
      KeyExpr key;
      const std::size_t end = value_at(k + 2, e, table, key);
      if (end == kNone || (end < e && t_[end].kind != TokenKind::Comma && !ends_clause(t_[end]))) {
        out.refusal = "the INSERT into " + table.name + " gives its sharding key " + table.column +
                      " as an expression: give a literal or a parameter";
        return;
      }
      out.keys.push_back(std::move(key));
      out.scope = ShardScope::Keys;
      return;
    }
    out.refusal =
        "INSERT into sharded table " + table.name + " must set its sharding key " + table.column;
  }

  // ---- tables ----

  const ShardedTable* find_sharded(std::string_view name) const {
    for (const auto& t : topo_.sharding.tables)
      if (last_component(t.name) == last_component(name)) return &t;
    return nullptr;
  }
  bool find_reference(std::string_view name) const {
    for (const auto& t : topo_.sharding.reference_tables)
      if (last_component(t) == last_component(name)) return true;
    return false;
  }

  // A name token that could be a table: not a qualifier ("t" in t.c), not a
  // function ("f" in f(..)).
  bool table_position(std::size_t i, std::size_t e) const {
    if (!is_name(t_[i])) return false;
    if (i + 1 < e && t_[i + 1].kind == TokenKind::Dot) return false;
    std::size_t q = i;  // first part of a qualified name
    while (q >= 2 && t_[q - 1].kind == TokenKind::Dot && is_name(t_[q - 2])) q -= 2;
    // f(..) is a call, but CREATE TABLE t (..) and CREATE INDEX .. ON t (..) name t.
    if (i + 1 < e && t_[i + 1].kind == TokenKind::LParen &&
        !(q > 0 && keyword_in(t_[q - 1], {"table", "exists", "on"})))
      return false;
    // "c" in t.c is a column; "t" in s.t is a table only after FROM-like words.
    return q == i || (q > 0 && table_cue(q - 1));
  }
  bool table_cue(std::size_t i) const {
    return keyword_in(t_[i], {"from", "join", "into", "update", "table", "only", "truncate",
                              "using", "straight_join"}) ||
           t_[i].kind == TokenKind::Comma;
  }

  bool sharded_name_inside(std::size_t b, std::size_t e) const {
    for (std::size_t i = b; i < e; ++i) {
      if (!table_position(i, e)) continue;
      const std::string n = name_of(t_[i], dialect_);
      if (find_sharded(n) || find_reference(n)) return true;
    }
    return false;
  }

  void collect_refs(std::size_t b, std::size_t e, int d, std::vector<Ref>& refs) const {
    for (std::size_t i = b; i < e; ++i) {
      if (depth_[i] != d || !table_position(i, e)) continue;
      Ref r;
      r.name = name_of(t_[i], dialect_);
      r.table = find_sharded(r.name);
      if (!r.table && !find_reference(r.name)) continue;
      r.name = std::string(last_component(r.name));
      std::size_t j = i + 1;
      if (j < e && is_keyword(t_[j], "as")) ++j;
      if (j < e && !not_alias(t_[j])) r.alias = name_of(t_[j], dialect_);
      r.group = refs.size();
      refs.push_back(std::move(r));
    }
  }

  // ---- predicates ----

  // A column reference [qualifier.]column at i; returns the index after it.
  std::size_t column_at(std::size_t i, std::size_t e, std::string& qualifier,
                        std::string& column) const {
    if (i >= e || !is_name(t_[i])) return kNone;
    std::size_t j = i;
    while (j + 2 < e && t_[j + 1].kind == TokenKind::Dot && is_name(t_[j + 2])) j += 2;
    if (j + 1 < e && t_[j + 1].kind == TokenKind::LParen) return kNone;  // a function call
    column = name_of(t_[j], dialect_);
    qualifier = j >= i + 2 ? name_of(t_[j - 2], dialect_) : std::string();
    return j + 1;
  }

  // The sharded ref whose key column this is, or kNone.
  std::size_t key_ref(const std::vector<Ref>& refs, const std::string& qualifier,
                      const std::string& column) const {
    for (std::size_t r = 0; r < refs.size(); ++r) {
      const Ref& ref = refs[r];
      if (!ref.table || ref.table->column != column) continue;
      if (qualifier.empty() || qualifier == ref.alias || (qualifier == ref.name)) return r;
    }
    return kNone;
  }

  // A literal or parameter at i (with sign and cast); the index after it.
  std::size_t value_at(std::size_t i, std::size_t e, const ShardedTable& table,
                       KeyExpr& key) const {
    key = KeyExpr{};
    key.table = &table;
    std::string sign;
    if (i < e && t_[i].kind == TokenKind::Operator && (t_[i].text == "-" || t_[i].text == "+")) {
      sign = std::string(t_[i].text);
      ++i;
      if (i >= e || t_[i].kind != TokenKind::Number) return kNone;
    }
    if (i >= e) return kNone;
    const Token& t = t_[i];
    if (t.kind == TokenKind::Param) {
      key.kind = KeyExpr::Kind::Param;
      key.param = param_[i];
    } else if (literal_[i] >= 0) {
      auto value = literal_value(t, dialect_);
      if (!value) return kNone;  // escape rules vary
      key.literal = sign + *value;
      key.sign = sign;
      key.literal_token = literal_[i];
    } else {
      return kNone;  // E'', $$, X'', an expression
    }
    ++i;
    // ::type, ::type(n): a cast of a literal to the column's type keeps its value.
    if (i + 1 < e && t_[i].kind == TokenKind::Operator && t_[i].text == "::" &&
        is_name(t_[i + 1])) {
      i += 2;
      while (i < e && is_name(t_[i]) && keyword_in(t_[i], {"precision", "varying"})) ++i;
      if (i < e && t_[i].kind == TokenKind::LParen) {
        const std::size_t close = matching(i, e);
        if (close == kNone) return kNone;
        i = close + 1;
      }
    }
    return i;
  }

  // Top-level conjuncts of a WHERE or ON clause starting at b.
  void conjuncts(std::size_t b, std::size_t e, int d, std::vector<Ref>& refs) const {
    std::size_t end = b;
    while (end < e && !(depth_[end] == d && ends_clause(t_[end]))) {
      const Token& t = t_[end];
      if (depth_[end] == d &&
          (is_keyword(t, "or") || is_keyword(t, "xor") ||
           (t.kind == TokenKind::Operator && t.text == "||" && dialect_ == Dialect::Mysql)))
        return;  // a disjunction: no conjunct bounds the rows
      ++end;
    }
    std::size_t start = b;
    for (std::size_t i = b; i <= end; ++i) {
      if (i < end && !(depth_[i] == d && is_keyword(t_[i], "and"))) continue;
      conjunct(start, i, refs);
      start = i + 1;
    }
  }

  // `ref = value`, `value = ref`, `ref = ref`, `ref IN (values)` filling [b, e) exactly.
  void conjunct(std::size_t b, std::size_t e, std::vector<Ref>& refs) const {
    if (b >= e || is_keyword(t_[b], "not")) return;
    std::string q1, c1;
    const std::size_t after = column_at(b, e, q1, c1);
    const std::size_t r1 = after == kNone ? kNone : key_ref(refs, q1, c1);
    if (r1 != kNone && after < e && is_keyword(t_[after], "in")) {
      in_list(after + 1, e, refs[r1]);
      return;
    }
    if (r1 != kNone && after < e && t_[after].kind == TokenKind::Operator) {
      const std::string_view op = t_[after].text;
      if (op == "=") {
        std::string q2, c2;
        const std::size_t after2 = column_at(after + 1, e, q2, c2);
        if (after2 == e) {
          const std::size_t r2 = key_ref(refs, q2, c2);
          if (r2 != kNone) link(refs, r1, r2);
          return;
        }
        KeyExpr key;
        if (value_at(after + 1, e, *refs[r1].table, key) == e) set_keys(refs[r1], {key});
      } else if ((op == "=-" || op == "=+") && after + 2 == e &&
                 t_[after + 1].kind == TokenKind::Number) {
        KeyExpr key;
        key.table = refs[r1].table;
        key.sign = std::string(op.substr(1));
        key.literal = key.sign + std::string(t_[after + 1].text);
        key.literal_token = literal_[after + 1];
        set_keys(refs[r1], {key});
      }
      return;
    }
    // value = ref
    for (std::size_t k = b; k < e; ++k) {
      if (t_[k].kind != TokenKind::Operator || t_[k].text != "=") continue;
      std::string q2, c2;
      if (column_at(k + 1, e, q2, c2) != e) return;
      const std::size_t r2 = key_ref(refs, q2, c2);
      KeyExpr key;
      if (r2 != kNone && value_at(b, k, *refs[r2].table, key) == k) set_keys(refs[r2], {key});
      return;
    }
  }

  void in_list(std::size_t i, std::size_t e, Ref& ref) const {
    if (i >= e || t_[i].kind != TokenKind::LParen || matching(i, e) != e - 1) return;
    std::vector<KeyExpr> keys;
    std::size_t start = i + 1;
    for (std::size_t k = i + 1; k < e; ++k) {
      if (k != e - 1 && !(t_[k].kind == TokenKind::Comma && depth_[k] == depth_[i] + 1)) continue;
      KeyExpr key;
      if (value_at(start, k, *ref.table, key) != k) return;  // a subquery or an expression
      keys.push_back(std::move(key));
      start = k + 1;
    }
    if (!keys.empty()) set_keys(ref, std::move(keys));
  }

  // JOIN .. USING (c, ..): joins on c of the tables before and the one joined.
  void using_columns(std::size_t open, std::size_t e, std::vector<Ref>& refs) const {
    const std::size_t close = matching(open, e);
    if (close == kNone || refs.size() < 2) return;
    for (std::size_t k = open + 1; k < close; ++k) {
      if (!is_name(t_[k])) continue;
      const std::string c = name_of(t_[k], dialect_);
      std::size_t last = kNone;
      for (std::size_t r = refs.size(); r-- > 0;) {
        if (!refs[r].table || refs[r].table->column != c) continue;
        if (last == kNone)
          last = r;
        else
          link(refs, last, r);
      }
    }
  }

  // Several conjuncts on one key intersect: the smallest list bounds the rows.
  static void set_keys(Ref& ref, std::vector<KeyExpr> keys) {
    if (ref.keyed && ref.keys.size() <= keys.size()) return;
    ref.keys = std::move(keys);
    ref.keyed = true;
  }

  static std::size_t root(std::vector<Ref>& refs, std::size_t r) {
    while (refs[r].group != r) r = refs[r].group = refs[refs[r].group].group;
    return r;
  }
  static void link(std::vector<Ref>& refs, std::size_t a, std::size_t b) {
    refs[root(refs, a)].group = root(refs, b);
  }

  static bool colocated(const ShardedTable& a, const ShardedTable& b) {
    if (&a == &b) return true;
    if (a.strategy != b.strategy || a.key_type != b.key_type) return false;
    if (a.strategy == ShardStrategy::Hash) return true;
    if (a.ranges.size() != b.ranges.size()) return false;
    for (std::size_t i = 0; i < a.ranges.size(); ++i) {
      const RangeRule &x = a.ranges[i], &y = b.ranges[i];
      if (x.has_from != y.has_from || x.has_to != y.has_to || x.from != y.from || x.to != y.to ||
          x.shard != y.shard)
        return false;
    }
    return true;
  }

  // Turns the level's refs into its scope: every group of key-joined sharded
  // refs must be bounded by keys, or be the only group (then: every shard).
  void settle(std::vector<Ref>& refs, ShardAnalysis& out) const {
    std::vector<std::size_t> roots;
    bool any_reference = false;
    for (std::size_t r = 0; r < refs.size(); ++r) {
      if (!refs[r].table) {
        any_reference = true;
        continue;
      }
      const std::size_t g = root(refs, r);
      if (!colocated(*refs[r].table, *refs[g].table)) {
        out.refusal = "tables " + refs[r].table->name + " and " + refs[g].table->name +
                      " are joined on their sharding keys but sharded differently, so their "
                      "rows are not on the same shards";
        return;
      }
      if (std::find(roots.begin(), roots.end(), g) == roots.end()) roots.push_back(g);
    }
    if (any_reference) out.scope = std::max(out.scope, ShardScope::Reference);
    if (roots.empty()) return;
    std::vector<const Ref*> unkeyed;
    std::vector<KeyExpr> keys;
    for (std::size_t g : roots) {
      const Ref* best = nullptr;
      for (std::size_t r = 0; r < refs.size(); ++r) {
        if (!refs[r].table || root(refs, r) != g || !refs[r].keyed) continue;
        if (!best || refs[r].keys.size() < best->keys.size()) best = &refs[r];
      }
      if (best) {
        keys.insert(keys.end(), best->keys.begin(), best->keys.end());
      } else {
        unkeyed.push_back(&refs[g]);
      }
    }
    if (!unkeyed.empty() && roots.size() > 1) {
      std::string names;
      for (std::size_t g : roots) names += (names.empty() ? "" : " and ") + refs[g].table->name;
      out.refusal = "the statement joins sharded tables " + names +
                    " without equating their sharding keys (" + unkeyed.front()->table->name + "." +
                    unkeyed.front()->table->column +
                    " = ...) or giving each its key, so no shard holds all the rows it needs";
      return;
    }
    if (!unkeyed.empty() && out.scope == ShardScope::Keys) {
      out.refusal = "a subquery of the statement is bounded by a sharding key but " +
                    unkeyed.front()->table->name + " is read without its key " +
                    unkeyed.front()->table->column + ", so no single shard can answer it";
      return;
    }
    if (!unkeyed.empty()) {
      out.scope = ShardScope::AllShards;
      out.keyless = unkeyed.front()->table;
      return;
    }
    if (roots.size() > 1 || out.scope == ShardScope::Keys) out.needs_one_shard = true;
    out.scope = ShardScope::Keys;
    out.keys.insert(out.keys.end(), keys.begin(), keys.end());
  }

  // UPDATE .. SET [t.]key = ..: refused (the row would have to move shards).
  std::optional<std::string> key_assignment(std::size_t b, std::size_t e, int d,
                                            const std::vector<Ref>& refs) const {
    for (std::size_t i = b; i < e; ++i)
      if (depth_[i] == d && is_keyword(t_[i], "set")) return assignment_list(i + 1, e, d, refs);
    return std::nullopt;
  }

  std::optional<std::string> assignment_list(std::size_t i, std::size_t e, int d,
                                             const std::vector<Ref>& refs) const {
    auto changes_key = [&](std::size_t k) {
      std::string q, c;
      return column_at(k, e, q, c) != kNone && key_ref(refs, q, c) != kNone;
    };
    auto is_assign = [&](std::size_t k) {
      return k < e && t_[k].kind == TokenKind::Operator && t_[k].text == "=";
    };
    for (std::size_t k = i; k < e; ++k) {
      if (depth_[k] != d) continue;
      if (keyword_in(t_[k], {"where", "from", "returning", "on"})) break;
      const bool start = k == i || t_[k - 1].kind == TokenKind::Comma;
      if (!start) continue;
      bool hit = false;
      if (t_[k].kind == TokenKind::LParen) {  // SET (a, b) = (..)
        const std::size_t close = matching(k, e);
        if (close == kNone || !is_assign(close + 1)) continue;
        for (std::size_t n = k + 1; n < close && !hit; ++n)
          hit = (n == k + 1 || t_[n - 1].kind == TokenKind::Comma) && changes_key(n);
      } else {
        std::string q, c;
        const std::size_t after = column_at(k, e, q, c);
        hit = after != kNone && is_assign(after) && key_ref(refs, q, c) != kNone;
      }
      if (!hit) continue;
      std::string q, c;
      std::size_t n = t_[k].kind == TokenKind::LParen ? k + 1 : k;
      while (t_[k].kind == TokenKind::LParen && !changes_key(n)) n += 2;
      column_at(n, e, q, c);
      const Ref& r = refs[key_ref(refs, q, c)];
      return "the statement changes the sharding key " + r.table->name + "." + r.table->column +
             " of a row, which would move it to another shard: delete the row and insert it "
             "with the new key instead";
    }
    return std::nullopt;
  }

  // ---- combining levels ----

  void combine(ShardAnalysis& out, ShardAnalysis part, bool several, const std::string& what) {
    if (out.refusal) return;
    if (part.refusal) {
      out.refusal = std::move(part.refusal);
      return;
    }
    const bool sharded_before = out.scope == ShardScope::Keys || out.scope == ShardScope::AllShards;
    const bool sharded_part = part.scope == ShardScope::Keys || part.scope == ShardScope::AllShards;
    if (part.scope == ShardScope::AllShards && (several || sharded_before)) {
      out.refusal = what + " " + part.keyless->name + " without its sharding key " +
                    part.keyless->column + ", so no single shard can answer it";
      return;
    }
    if (out.scope == ShardScope::AllShards && sharded_part) {
      out.refusal = what + " " + out.keyless->name + " without its sharding key " +
                    out.keyless->column + ", so no single shard can answer it";
      return;
    }
    if (sharded_before && sharded_part) out.needs_one_shard = true;
    out.needs_one_shard = out.needs_one_shard || part.needs_one_shard;
    out.scope = std::max(out.scope, part.scope);
    if (part.scope == ShardScope::AllShards) out.keyless = part.keyless;
    out.keys.insert(out.keys.end(), part.keys.begin(), part.keys.end());
    out.writes = out.writes || part.writes;
    out.writes_reference = out.writes_reference || part.writes_reference;
  }

  std::size_t matching(std::size_t open, std::size_t e) const {
    for (std::size_t k = open + 1; k < e; ++k)
      if (t_[k].kind == TokenKind::RParen && depth_[k] == depth_[open]) return k;
    return kNone;
  }

  Span t_;
  Dialect dialect_;
  const Topology& topo_;
  std::vector<int> depth_;  // paren depth of each token ('(' and ')' at the outer depth)
  std::vector<std::uint32_t> param_;
  std::vector<std::int32_t> literal_;  // ordinal among the statement's literals, or -1
};

struct Lexed {
  std::vector<Token> tokens;  // without comments
  bool error = false;
  bool backslash_single = false;
  bool backslash_double = false;
};

Lexed lex(std::string_view sql, Dialect dialect, LexerMode mode) {
  Lexed out;
  SqlLexer lexer(sql, dialect, mode);
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) {
      out.error = true;
      break;
    }
    if (t.kind != TokenKind::Comment) out.tokens.push_back(t);
  }
  out.backslash_single = lexer.backslash_in_single_quotes();
  out.backslash_double = lexer.backslash_in_double_quotes();
  return out;
}

// A table the statement names that is neither sharded nor reference (and not
// a CTE of the statement): it lives on the default shard only.
std::string unsharded_table(const Statement& stmt, const Topology& topology, std::string_view sql) {
  for (const std::string& n : stmt.tables) {
    const std::string_view last = last_component(n);
    bool known = false;
    for (const auto& t : topology.sharding.tables) known = known || last_component(t.name) == last;
    for (const auto& t : topology.sharding.reference_tables)
      known = known || last_component(t) == last;
    if (known) continue;
    // WITH name AS (...): a name the statement defines itself. Compared with
    // blanks folded, so that how they are written cannot change the answer.
    std::string compact;
    for (char c : sql) {
      const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
      if (blank) {
        if (!compact.empty() && compact.back() != ' ') compact.push_back(' ');
        continue;
      }
      if (c == '(' && !compact.empty() && compact.back() == ' ') compact.pop_back();
      compact.push_back(ascii_lower(c));
    }
    const std::string cte = std::string(last) + " as(";
    bool defined = false;
    for (auto at = compact.find(cte); at != std::string::npos && !defined;
         at = compact.find(cte, at + 1)) {
      const char before = at == 0 ? ' ' : compact[at - 1];
      defined =
          !((before >= 'a' && before <= 'z') || (before >= '0' && before <= '9') || before == '_');
    }
    if (defined) continue;
    return n;
  }
  return {};
}

}  // namespace

ShardAnalysis analyze_shards(std::string_view sql, Dialect dialect, const Statement& stmt,
                             const Topology& topology) {
  ShardAnalysis out;
  if (topology.sharding.empty()) return out;
  const Lexed lexed = lex(sql, dialect, default_lexer_mode(dialect));
  if (lexed.error) {
    // The text the server would reject anyway; which tables it names is unknowable.
    out.refusal =
        "shardgate cannot read this statement (an unterminated string, quoted name "
        "or comment), so it cannot tell which shard it belongs to";
    return out;
  }
  out = Analyzer(lexed.tokens, dialect, topology).text();
  // Where a backslash in a string could end it elsewhere under other server
  // settings, every reading must agree.
  std::vector<LexerMode> alternates;
  if (dialect == Dialect::Postgres && lexed.backslash_single)
    alternates.push_back(LexerMode{true, false});
  if (dialect == Dialect::Mysql && (lexed.backslash_single || lexed.backslash_double)) {
    alternates.push_back(LexerMode{true, false});
    alternates.push_back(LexerMode{false, false});
  }
  for (LexerMode other : alternates) {
    const Lexed again = lex(sql, dialect, other);
    if (again.error) continue;
    if (!(Analyzer(again.tokens, dialect, topology).text() == out)) {
      ShardAnalysis refused;
      refused.refusal =
          "a backslash in a string makes the statement's meaning depend on server settings "
          "(standard_conforming_strings, NO_BACKSLASH_ESCAPES), so shardgate cannot tell which "
          "shard it belongs to: avoid backslashes or pass the value as a parameter";
      return refused;
    }
  }
  if (!out.refusal && (out.scope == ShardScope::Keys || out.scope == ShardScope::AllShards))
    out.unsharded_table = unsharded_table(stmt, topology, sql);
  return out;
}

ShardAnalysis ShardPlanCache::analyze(std::string_view sql, Dialect dialect, const Statement& stmt,
                                      const Topology& topology) {
  if (topology.sharding.empty()) return ShardAnalysis{};
  if (&topology != topology_ || topology.version != version_) {
    // Cached analyses point at the tables of the topology they were made with.
    entries_.clear();
    lru_.clear();
    topology_ = &topology;
    version_ = topology.version;
  }
  if (sql.find('\\') != std::string_view::npos) return analyze_shards(sql, dialect, stmt, topology);
  const Lexed lexed = lex(sql, dialect, default_lexer_mode(dialect));
  if (lexed.error) return analyze_shards(sql, dialect, stmt, topology);
  std::string shape(1, dialect == Dialect::Postgres ? 'p' : 'm');
  shape.reserve(sql.size() + 8);
  std::vector<std::string_view> literals;
  std::vector<const Token*> literal_tokens;
  for (const Token& t : lexed.tokens) {
    shape.push_back(' ');
    if (is_literal(t, dialect)) {
      shape += t.kind == TokenKind::Number ? "\x01n" : "\x01s";
      literal_tokens.push_back(&t);
    } else {
      shape.append(t.text);
    }
  }
  auto it = entries_.find(shape);
  if (it != entries_.end()) {
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    ShardAnalysis out = it->second.analysis;
    for (KeyExpr& k : out.keys) {
      if (k.kind != KeyExpr::Kind::Literal) continue;
      auto value =
          literal_value(*literal_tokens[static_cast<std::size_t>(k.literal_token)], dialect);
      k.literal = k.sign + value.value_or(std::string());
    }
    return out;
  }
  ++misses_;
  ShardAnalysis fresh = analyze_shards(sql, dialect, stmt, topology);
  for (const KeyExpr& k : fresh.keys)
    if (k.kind == KeyExpr::Kind::Literal &&
        (k.literal_token < 0 || static_cast<std::size_t>(k.literal_token) >= literal_tokens.size()))
      return fresh;  // not expressible by shape: keep it out of the cache
  if (entries_.size() >= capacity_ && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(shape);
  entries_.emplace(std::move(shape), Entry{fresh, lru_.begin()});
  return fresh;
}

}  // namespace shardgate::router
