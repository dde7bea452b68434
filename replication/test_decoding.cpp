#include "replication/test_decoding.h"

#include <utility>

namespace shardgate::replication {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  bool done() const { return at_ >= text_.size(); }
  bool take(std::string_view word) {
    if (text_.substr(at_).starts_with(word)) {
      at_ += word.size();
      return true;
    }
    return false;
  }
  void skip_spaces() {
    while (at_ < text_.size() && text_[at_] == ' ') ++at_;
  }

  // name[type]:value
  Result<DecodedColumn> column() {
    DecodedColumn c;
    auto name = identifier();
    if (!name) return name.error();
    c.name = std::move(*name);
    if (!take("[")) return bad("'[' after column " + c.name);
    const auto close = text_.find("]:", at_);
    if (close == std::string_view::npos) return bad("no type for column " + c.name);
    c.type = std::string(text_.substr(at_, close - at_));
    at_ = close + 2;
    if (at_ < text_.size() && text_[at_] == '\'') {
      auto lit = quoted('\'');
      if (!lit) return lit.error();
      c.literal = std::move(*lit);
      return c;
    }
    const auto end = std::min(text_.find(' ', at_), text_.size());
    const std::string_view token = text_.substr(at_, end - at_);
    at_ = end;
    if (token.empty()) return bad("no value for column " + c.name);
    if (token == "unchanged-toast-datum")
      c.unchanged_toast = true;
    else if (token != "null")
      c.literal = std::string(token);
    return c;
  }

  // A column name: "quoted" (with "" inside) or bare up to '['.
  Result<std::string> identifier() {
    if (at_ < text_.size() && text_[at_] == '"') return quoted('"');
    const auto end = text_.find('[', at_);
    if (end == std::string_view::npos || end == at_) return bad("a column name");
    std::string name(text_.substr(at_, end - at_));
    at_ = end;
    return name;
  }

  // From the opening `q` through its closing one, a doubled `q` inside.
  Result<std::string> quoted(char q) {
    const std::size_t start = at_++;
    while (at_ < text_.size()) {
      if (text_[at_] != q) {
        ++at_;
        continue;
      }
      if (at_ + 1 < text_.size() && text_[at_ + 1] == q) {
        at_ += 2;
        continue;
      }
      ++at_;
      return std::string(text_.substr(start, at_ - start));
    }
    return bad("an unterminated quoted value");
  }

  Error bad(const std::string& what) const {
    return make_error("cannot read test_decoding output at byte " + std::to_string(at_) + " (" +
                      what + "): " + std::string(text_.substr(0, 200)));
  }

 private:
  std::string_view text_;
  std::size_t at_ = 0;
};

Result<std::vector<DecodedColumn>> columns(Reader& r, std::string_view stop) {
  std::vector<DecodedColumn> out;
  for (;;) {
    r.skip_spaces();
    if (r.done() || (!stop.empty() && r.take(stop))) return out;
    auto c = r.column();
    if (!c) return c.error();
    out.push_back(std::move(*c));
  }
}

std::string value_sql(const DecodedColumn& c) {
  return c.literal ? "CAST(" + *c.literal + " AS " + c.type + ")" : "NULL";
}

std::string where_sql(const std::vector<DecodedColumn>& key) {
  std::string out;
  for (const auto& c : key) {
    if (!out.empty()) out += " AND ";
    out += c.literal ? c.name + " = " + value_sql(c) : c.name + " IS NULL";
  }
  return out;
}

}  // namespace

Result<std::optional<DecodedChange>> parse_test_decoding(std::string_view line) {
  if (!line.starts_with("table ")) return std::optional<DecodedChange>();
  // The table: one or two names, each bare or "quoted" (where ": " may hide).
  std::size_t at = 6;
  for (int part = 0; part < 2; ++part) {
    if (at < line.size() && line[at] == '"') {
      for (++at; at < line.size(); ++at) {
        if (line[at] != '"') continue;
        if (at + 1 < line.size() && line[at + 1] == '"') {
          ++at;
          continue;
        }
        ++at;
        break;
      }
    } else {
      while (at < line.size() && line[at] != '.' && line[at] != ':') ++at;
    }
    if (at >= line.size() || line[at] != '.') break;
    ++at;
  }
  static constexpr std::pair<std::string_view, DecodedChange::Kind> kKinds[] = {
      {": INSERT: ", DecodedChange::Kind::kInsert},
      {": UPDATE: ", DecodedChange::Kind::kUpdate},
      {": DELETE: ", DecodedChange::Kind::kDelete},
      {": TRUNCATE: ", DecodedChange::Kind::kTruncate}};
  DecodedChange change;
  std::size_t word = 0;
  for (const auto& [text, kind] : kKinds) {
    if (line.substr(at).starts_with(text)) {
      change.kind = kind;
      word = text.size();
    }
  }
  if (word == 0)
    return make_error("cannot read test_decoding output: " + std::string(line.substr(0, 200)));
  change.table = std::string(line.substr(6, at - 6));
  const std::string_view rest = line.substr(at + word);
  if (rest.starts_with("(no-tuple-data)"))
    return make_error("a change to " + change.table +
                      " carries no row to find it by: the table has no primary key (REPLICA "
                      "IDENTITY NOTHING)");
  Reader r(rest);
  switch (change.kind) {
    case DecodedChange::Kind::kTruncate:
      change.cascade = rest.find("cascade") != std::string_view::npos;
      change.restart_identity = rest.find("restart_seqs") != std::string_view::npos;
      break;
    case DecodedChange::Kind::kInsert: {
      auto row = columns(r, "");
      if (!row) return row.error();
      change.row = std::move(*row);
      break;
    }
    case DecodedChange::Kind::kUpdate: {
      if (r.take("old-key: ")) {
        auto key = columns(r, "new-tuple: ");
        if (!key) return key.error();
        change.old_key = std::move(*key);
      }
      auto row = columns(r, "");
      if (!row) return row.error();
      change.row = std::move(*row);
      break;
    }
    case DecodedChange::Kind::kDelete: {
      auto key = columns(r, "");
      if (!key) return key.error();
      change.old_key = std::move(*key);
      break;
    }
  }
  return std::optional<DecodedChange>(std::move(change));
}

Result<std::string> change_sql(const DecodedChange& c,
                               const std::vector<std::string>& primary_key) {
  switch (c.kind) {
    case DecodedChange::Kind::kTruncate:
      return "TRUNCATE " + c.table + (c.restart_identity ? " RESTART IDENTITY" : "") +
             (c.cascade ? " CASCADE" : "");
    case DecodedChange::Kind::kInsert: {
      std::string names, values;
      for (const auto& col : c.row) {
        names += (names.empty() ? "" : ", ") + col.name;
        values += (values.empty() ? "" : ", ") + value_sql(col);
      }
      return "INSERT INTO " + c.table + " (" + names + ") VALUES (" + values + ")";
    }
    case DecodedChange::Kind::kDelete:
      if (c.old_key.empty()) return make_error("a DELETE from " + c.table + " names no key");
      return "DELETE FROM " + c.table + " WHERE " + where_sql(c.old_key);
    case DecodedChange::Kind::kUpdate: {
      std::string set;
      for (const auto& col : c.row) {
        if (col.unchanged_toast) continue;
        set += (set.empty() ? "" : ", ") + col.name + " = " + value_sql(col);
      }
      std::vector<DecodedColumn> key = c.old_key;
      if (key.empty()) {
        for (const auto& name : primary_key) {
          bool found = false;
          for (const auto& col : c.row)
            if (col.name == name && !col.unchanged_toast) {
              key.push_back(col);
              found = true;
            }
          if (!found)
            return make_error("an UPDATE of " + c.table + " lacks its key column " + name);
        }
      }
      if (key.empty())
        return make_error("an UPDATE of " + c.table +
                          " cannot find its row: the table has no primary key");
      if (set.empty()) return make_error("an UPDATE of " + c.table + " changes nothing");
      return "UPDATE " + c.table + " SET " + set + " WHERE " + where_sql(key);
    }
  }
  return make_error("unknown change");
}

}  // namespace shardgate::replication
