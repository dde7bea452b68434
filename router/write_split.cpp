#include "router/write_split.h"

#include <map>
#include <vector>

#include "router/sql_lexer.h"

namespace shardgate::router {

InsertRows insert_row_spans(std::string_view sql, Dialect dialect) {
  SqlLexer lexer(sql, dialect);
  std::vector<Token> tokens;
  InsertRows out;
  int level = 0;
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) {
      out.insert = true;  // unreadable: never the same text to every shard
      return out;
    }
    if (t.kind == TokenKind::Comment) continue;
    if (t.kind == TokenKind::LParen) ++level;
    if (t.kind == TokenKind::RParen) --level;
    if (level == 0 && t.kind == TokenKind::Word &&
        (iequals(t.text, "insert") || iequals(t.text, "replace")))
      out.insert = true;
    tokens.push_back(t);
  }
  if (tokens.empty() || !(iequals(tokens[0].text, "insert") || iequals(tokens[0].text, "replace")))
    return out;
  auto offset = [&](const Token& t) {
    return static_cast<std::size_t>(t.text.data() - sql.data());
  };
  int depth = 0;
  std::size_t i = 0;
  for (; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (t.kind == TokenKind::LParen) ++depth;
    if (t.kind == TokenKind::RParen) --depth;
    if (depth == 0 && t.kind == TokenKind::Word &&
        (iequals(t.text, "values") || iequals(t.text, "value")))
      break;
  }
  std::vector<Span>& rows = out.rows;
  for (++i; i < tokens.size() && tokens[i].kind == TokenKind::LParen;) {
    const std::size_t begin = offset(tokens[i]);
    int d = 0;
    std::size_t k = i;
    for (; k < tokens.size(); ++k) {
      if (tokens[k].kind == TokenKind::LParen) ++d;
      if (tokens[k].kind == TokenKind::RParen && --d == 0) break;
    }
    if (k == tokens.size()) {
      rows.clear();
      return out;
    }
    rows.push_back({begin, offset(tokens[k]) + 1});
    i = k + 1;
    if (i < tokens.size() && tokens[i].kind == TokenKind::Comma) ++i;
  }
  return out;
}

bool runs_outside_transaction(std::string_view sql) {
  SqlLexer lexer(sql, Dialect::Postgres);
  std::vector<Token> head;  // the first two words
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) return false;
    if (t.kind == TokenKind::Comment) continue;
    if (is_keyword(t, "concurrently")) return true;
    if (head.size() < 2) head.push_back(t);
  }
  if (head.size() < 2) return false;
  const bool create_or_drop = is_keyword(head[0], "create") || is_keyword(head[0], "drop");
  return (create_or_drop &&
          (is_keyword(head[1], "database") || is_keyword(head[1], "tablespace"))) ||
         (is_keyword(head[0], "alter") && is_keyword(head[1], "system"));
}

WritePlan plan_schema_change(std::string_view sql, Dialect dialect, const Topology& topology) {
  WritePlan plan;
  plan.reference = true;
  plan.schema_change = true;
  plan.outside_transaction = dialect == Dialect::Postgres && runs_outside_transaction(sql);
  for (std::uint32_t shard = 0; shard < topology.shards.size(); ++shard)
    plan.writes.push_back({shard, std::string(sql)});
  return plan;
}

Result<WritePlan> plan_write(std::string_view sql, Dialect dialect, const ShardAnalysis& analysis,
                             const ShardTargets& targets, const Topology& topology) {
  WritePlan plan;
  plan.reference = analysis.writes_reference;
  const InsertRows found = insert_row_spans(sql, dialect);
  const std::vector<Span>& rows = found.rows;
  if (!found.insert) {
    for (std::uint32_t shard : targets.shards) plan.writes.push_back({shard, std::string(sql)});
    return plan;
  }
  if (analysis.writes_reference) {
    // The same rows on every shard.
    for (std::uint32_t shard : targets.shards) plan.writes.push_back({shard, std::string(sql)});
    return plan;
  }
  if (rows.empty() || analysis.scope != ShardScope::Keys)
    return make_error(
        "an INSERT whose rows belong to several shards must be a plain INSERT ... VALUES (...), "
        "(...) to be split: send one statement per shard's rows");
  if (rows.size() != analysis.keys.size())
    return make_error("the INSERT's rows could not be matched with their sharding keys");
  auto shards = shards_of_keys(analysis, {}, topology);
  if (!shards) return shards.error();
  std::map<std::uint32_t, std::string> values;  // shard -> its rows, comma separated
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string& v = values[(*shards)[r]];
    if (!v.empty()) v += ", ";
    v.append(sql.substr(rows[r].begin, rows[r].end - rows[r].begin));
  }
  const std::string_view head = sql.substr(0, rows.front().begin);
  const std::string_view tail = sql.substr(rows.back().end);
  for (const auto& [shard, v] : values) {
    std::string text;
    text.reserve(head.size() + v.size() + tail.size());
    text.append(head).append(v).append(tail);
    plan.writes.push_back({shard, std::move(text)});
  }
  return plan;
}

bool has_returning(std::string_view sql, Dialect dialect) {
  SqlLexer lexer(sql, dialect);
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error) return true;
    if (is_keyword(t, "returning")) return true;
  }
  return false;
}

}  // namespace shardgate::router
