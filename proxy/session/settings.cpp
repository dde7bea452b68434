#include "proxy/session/settings.h"

#include <array>
#include <cctype>
#include <vector>

namespace shardgate::session {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits the first few words (identifiers or quoted identifiers); stops at the
// first token that is neither, so values are never tokenized.
std::vector<std::string_view> leading_words(std::string_view sql, std::size_t max_words,
                                            std::size_t& end) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (words.size() < max_words) {
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    const std::size_t start = i;
    if (i < sql.size() && sql[i] == '"') {
      const auto close = sql.find('"', i + 1);
      if (close == std::string_view::npos) break;
      i = close + 1;
    } else {
      while (i < sql.size() &&
             (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' || sql[i] == '.'))
        ++i;
    }
    if (i == start) break;
    words.push_back(sql.substr(start, i - start));
    end = i;
  }
  return words;
}

std::string_view trim_statement(std::string_view sql) {
  while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front())))
    sql.remove_prefix(1);
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';'))
    sql.remove_suffix(1);
  return sql;
}

// PostgreSQL looks setting names up case-insensitively, quoted or not.
std::string setting_name(std::string_view word) {
  if (word.size() >= 2 && word.front() == '"') return lower(word.substr(1, word.size() - 2));
  return lower(word);
}

std::string reset_sql(const std::string& name) {
  if (name == "role") return "RESET ROLE";
  if (name == "session_authorization") return "RESET SESSION AUTHORIZATION";
  if (name == "session_characteristics")
    return "RESET default_transaction_isolation; RESET default_transaction_read_only; "
           "RESET default_transaction_deferrable";
  return "RESET " + quote_identifier(name);
}

}  // namespace

std::string quote_identifier(std::string_view s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string quote_literal(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::optional<SettingChange> parse_setting_change(std::string_view sql) {
  sql = trim_statement(sql);
  if (sql.find(';') != std::string_view::npos) return std::nullopt;  // several statements
  std::size_t end = 0;
  auto w = leading_words(sql, 4, end);
  if (w.empty()) return std::nullopt;
  const std::string first = lower(w[0]);
  if (first == "discard" && w.size() >= 2 && lower(w[1]) == "all")
    return SettingChange{SettingChange::Op::ResetAll, "discard", {}};
  if (first == "reset" && w.size() >= 2) {
    std::string name = setting_name(w[1]);
    if (name == "all") return SettingChange{SettingChange::Op::ResetAll, {}, {}};
    if (name == "session" && w.size() >= 3) name = "session_authorization";
    if (name == "time" && w.size() >= 3) name = "timezone";
    return SettingChange{SettingChange::Op::Reset, name, {}};
  }
  if (first != "set" || w.size() < 2) return std::nullopt;
  std::size_t i = 1;
  std::string second = lower(w[1]);
  if (second == "local" || second == "transaction" || second == "constraints") return std::nullopt;
  if (second == "session" && w.size() >= 3) {
    const std::string third = lower(w[2]);
    if (third == "authorization")
      return SettingChange{SettingChange::Op::Set, "session_authorization", std::string(sql)};
    if (third == "characteristics")
      return SettingChange{SettingChange::Op::Set, "session_characteristics", std::string(sql)};
    i = 2;
  }
  std::string name = setting_name(w[i]);
  if (name == "time" && i + 1 < w.size() && lower(w[i + 1]) == "zone") name = "timezone";
  if (name == "names") name = "client_encoding";
  return SettingChange{SettingChange::Op::Set, name, std::string(sql)};
}

void apply_change(Settings& settings, const SettingChange& change) {
  switch (change.op) {
    case SettingChange::Op::Set:
      settings[change.name] = change.sql;
      break;
    case SettingChange::Op::Reset:
      settings.erase(change.name);
      break;
    case SettingChange::Op::ResetAll:
      settings.clear();
      break;
  }
}

Settings settings_from_startup(const pg::Params& params) {
  Settings s;
  auto add = [&](std::string_view name, std::string_view value) {
    const std::string n = lower(name);
    s[n] = "SET " + quote_identifier(n) + " TO " + quote_literal(value);
  };
  for (const auto& [name, value] : params) {
    if (name == "user" || name == "database" || name == "replication") continue;
    if (name != "options") {
      add(name, value);
      continue;
    }
    // options: "-c name=value" or "--name=value", separated by spaces.
    std::size_t i = 0;
    while (i < value.size()) {
      while (i < value.size() && value[i] == ' ') ++i;
      std::size_t j = value.find(' ', i);
      if (j == std::string::npos) j = value.size();
      std::string_view tok(value.data() + i, j - i);
      if (tok == "-c" && j < value.size()) {
        i = j + 1;
        j = value.find(' ', i);
        if (j == std::string::npos) j = value.size();
        tok = std::string_view(value.data() + i, j - i);
      } else if (tok.starts_with("-c")) {
        tok.remove_prefix(2);  // -cname=value, as getopt reads it
      } else if (tok.starts_with("--")) {
        tok.remove_prefix(2);
      }
      const auto eq = tok.find('=');
      if (eq != std::string_view::npos) {
        // Like PostgreSQL's ParseLongOption: dashes in the name are underscores.
        std::string name(tok.substr(0, eq));
        for (char& c : name) c = c == '-' ? '_' : c;
        add(name, tok.substr(eq + 1));
      }
      i = j;
    }
  }
  return s;
}

std::string settings_sync_sql(const Settings& client, const Settings& server) {
  std::string sql;
  for (const auto& [name, apply] : client) {
    auto it = server.find(name);
    if (it == server.end() || it->second != apply) sql += apply + ";";
  }
  for (const auto& [name, apply] : server)
    if (!client.count(name)) sql += reset_sql(name) + ";";
  return sql;
}

SharedSettings SharedSettings::intern(Settings settings) {
  if (settings.empty()) return {};
  // Bounded: a proxy whose clients log in with many different settings
  // shares fewer of them, and keeps at most this many maps alive.
  thread_local std::array<std::shared_ptr<const Settings>, 16> kept;
  thread_local std::size_t next = 0;
  for (const auto& k : kept)
    if (k && *k == settings) return SharedSettings(k);
  auto made = std::make_shared<const Settings>(std::move(settings));
  kept[next] = made;
  next = (next + 1) % kept.size();
  return SharedSettings(std::move(made));
}

const Settings& SharedSettings::get() const {
  static const Settings none;
  return map_ ? *map_ : none;
}

void SharedSettings::apply(const SettingChange& change) {
  auto changed = std::make_shared<Settings>(get());
  apply_change(*changed, change);
  if (changed->empty())
    map_.reset();
  else
    map_ = std::move(changed);
}

std::string settings_sync_sql(const SharedSettings& client, const SharedSettings& server) {
  if (client.same_as(server)) return {};
  return settings_sync_sql(client.get(), server.get());
}

}  // namespace shardgate::session
