// Session settings that must follow a client from one server connection to the
// next in transaction pooling: startup parameters (client_encoding, DateStyle,
// application_name ...) and successful session-level SET / RESET statements.
// Each setting is remembered as the SQL that re-applies it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/protocol/postgres/messages.h"

namespace shardgate::session {

using Settings = std::map<std::string, std::string>;  // lower-case name -> SQL applying it

struct SettingChange {
  enum class Op { Set, Reset, ResetAll } op = Op::Set;
  std::string name;  // for ResetAll: "discard" when it was DISCARD ALL
  std::string sql;   // for Set: the statement as the client wrote it (without trailing ';')
};

// Recognizes SET [SESSION] ..., RESET ..., DISCARD ALL. SET LOCAL and anything
// else give nullopt.
std::optional<SettingChange> parse_setting_change(std::string_view sql);

void apply_change(Settings& settings, const SettingChange& change);

// Settings from a StartupMessage (user, database and replication excluded;
// "options" is split into its -c name=value pairs).
Settings settings_from_startup(const pg::Params& params);

// The SQL that turns a server connection's settings into the client's, or an
// empty string when they already agree.
std::string settings_sync_sql(const Settings& client, const Settings& server);

// Settings as a session or a server connection holds them: immutable and
// shared, replaced whole when one changes. The clients of one application
// mostly log in with the same startup parameters, so thousands of idle
// clients share one map, and a server connection that already has a
// client's settings is recognized by pointer.
class SharedSettings {
 public:
  SharedSettings() = default;  // none
  // The copy of `settings` this thread already shares, or a new one. Each
  // thread keeps a few (sessions never change threads, so no lock).
  static SharedSettings intern(Settings settings);

  const Settings& get() const;
  void apply(const SettingChange& change);  // copies, never changes a shared map
  bool same_as(const SharedSettings& other) const { return map_ == other.map_; }

 private:
  explicit SharedSettings(std::shared_ptr<const Settings> map) : map_(std::move(map)) {}
  std::shared_ptr<const Settings> map_;  // null: none
};

// As above; nothing when both share one map.
std::string settings_sync_sql(const SharedSettings& client, const SharedSettings& server);

std::string quote_identifier(std::string_view s);
std::string quote_literal(std::string_view s);

}  // namespace shardgate::session
