// Unit tests of session settings: recognizing SET/RESET, startup parameters
// and the SQL that brings a server connection in line with a client.
#include "proxy/session/settings.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace shardgate::session {
namespace {

using Op = SettingChange::Op;

// ---------------------------------------------------------------- parse_setting_change

struct SetCase {
  const char* sql;
  const char* name;
  const char* stored_sql;
};

TEST(SettingChangeParse, SetStatements) {
  const SetCase cases[] = {
      {"SET x = 1", "x", "SET x = 1"},
      {"SET x = 1;", "x", "SET x = 1"},
      {"  SET x TO 1 ;  ", "x", "SET x TO 1"},
      {"SET SESSION x TO 'a'", "x", "SET SESSION x TO 'a'"},
      {"set session Work_Mem to '64MB'", "work_mem", "set session Work_Mem to '64MB'"},
      {"SET search_path TO app, public", "search_path", "SET search_path TO app, public"},
      {"set Time Zone 'UTC'", "timezone", "set Time Zone 'UTC'"},
      {"SET TIME ZONE LOCAL", "timezone", "SET TIME ZONE LOCAL"},
      {"SET TimeZone = 'Europe/Paris'", "timezone", "SET TimeZone = 'Europe/Paris'"},
      {"SET NAMES 'UTF8'", "client_encoding", "SET NAMES 'UTF8'"},
      {"SET myapp.tenant = '42'", "myapp.tenant", "SET myapp.tenant = '42'"},
      {"SET \"search_path\" TO foo", "search_path", "SET \"search_path\" TO foo"},
      {"SET \"my.setting\" = 1", "my.setting", "SET \"my.setting\" = 1"},
      {"SET SESSION AUTHORIZATION bob", "session_authorization", "SET SESSION AUTHORIZATION bob"},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "session_characteristics",
       "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"},
      {"SET x TO DEFAULT", "x", "SET x TO DEFAULT"},
  };
  for (const SetCase& c : cases) {
    const auto change = parse_setting_change(c.sql);
    ASSERT_TRUE(change.has_value()) << c.sql;
    EXPECT_EQ(change->op, Op::Set) << c.sql;
    EXPECT_EQ(change->name, c.name) << c.sql;
    EXPECT_EQ(change->sql, c.stored_sql) << c.sql;
  }
}

TEST(SettingChangeParse, QuotedNameOfABuiltInSettingIsCaseInsensitive) {
  // PostgreSQL looks setting names up case-insensitively, quoted or not:
  // SET "TimeZone" and RESET timezone name the same setting, and Settings is
  // keyed by the lower-case name.
  const auto set = parse_setting_change("SET \"TimeZone\" TO 'UTC'");
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->name, "timezone");

  Settings s;
  apply_change(s, *set);
  const auto reset = parse_setting_change("RESET timezone");
  ASSERT_TRUE(reset.has_value());
  apply_change(s, *reset);
  EXPECT_TRUE(s.empty()) << "RESET timezone left " << s.begin()->first;
}

TEST(SettingChangeParse, NotSessionSettings) {
  for (const char* sql : {
           "SET LOCAL x = 1",
           "set local search_path to foo",
           "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
           "SET transaction READ ONLY",
           "SET CONSTRAINTS ALL DEFERRED",
           "SET x = 1; SET y = 2",
           "SET x = 1; SELECT 1",
           "SELECT 1; SET x = 1",
           "SELECT set_config('x', '1', false)",
           "SHOW x",
           "SET",
           "RESET",
           "DISCARD PLANS",
           "DISCARD",
           "",
           "   ;  ",
           "settings",
       }) {
    EXPECT_FALSE(parse_setting_change(sql).has_value()) << sql;
  }
}

TEST(SettingChangeParse, Reset) {
  struct Case {
    const char* sql;
    const char* name;
  };
  for (const Case& c : {
           Case{"RESET x", "x"},
           Case{"reset Work_Mem;", "work_mem"},
           Case{"RESET TIME ZONE", "timezone"},
           Case{"RESET SESSION AUTHORIZATION", "session_authorization"},
           Case{"RESET ROLE", "role"},
           Case{"RESET \"search_path\"", "search_path"},
       }) {
    const auto change = parse_setting_change(c.sql);
    ASSERT_TRUE(change.has_value()) << c.sql;
    EXPECT_EQ(change->op, Op::Reset) << c.sql;
    EXPECT_EQ(change->name, c.name) << c.sql;
  }
}

TEST(SettingChangeParse, ResetAllAndDiscardAll) {
  // DISCARD ALL also drops prepared statements, so it is told apart by name.
  for (const char* sql : {"RESET ALL", "reset all;", "DISCARD ALL", "discard all ;"}) {
    const auto change = parse_setting_change(sql);
    ASSERT_TRUE(change.has_value()) << sql;
    EXPECT_EQ(change->op, Op::ResetAll) << sql;
    const bool discard = std::string_view(sql).substr(0, 7) == "DISCARD" ||
                         std::string_view(sql).substr(0, 7) == "discard";
    EXPECT_EQ(change->name, discard ? "discard" : "") << sql;
  }
}

TEST(SettingChangeApply, SetResetResetAll) {
  Settings s;
  apply_change(s, *parse_setting_change("SET x = 1"));
  apply_change(s, *parse_setting_change("SET y TO 'b'"));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at("x"), "SET x = 1");
  apply_change(s, *parse_setting_change("SET X = 2"));  // same setting, replaced
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at("x"), "SET X = 2");
  apply_change(s, *parse_setting_change("RESET x"));
  EXPECT_EQ(s.count("x"), 0u);
  EXPECT_EQ(s.size(), 1u);
  apply_change(s, *parse_setting_change("RESET ALL"));
  EXPECT_TRUE(s.empty());
}

// ---------------------------------------------------------------- settings_from_startup

TEST(SettingsFromStartup, ExcludesIdentityAndQuotesValues) {
  const pg::Params params = {{"user", "alice"},
                             {"database", "app"},
                             {"replication", "false"},
                             {"application_name", "it's me"},
                             {"DateStyle", "ISO, MDY"}};
  const Settings s = settings_from_startup(params);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at("application_name"), "SET \"application_name\" TO 'it''s me'");
  EXPECT_EQ(s.at("datestyle"), "SET \"datestyle\" TO 'ISO, MDY'");
}

TEST(SettingsFromStartup, OptionsAreSplitIntoSettings) {
  const Settings s =
      settings_from_startup({{"user", "u"}, {"options", "-c search_path=foo --work_mem=64MB"}});
  ASSERT_EQ(s.size(), 2u) << (s.empty() ? "" : s.begin()->first);
  EXPECT_EQ(s.at("search_path"), "SET \"search_path\" TO 'foo'");
  EXPECT_EQ(s.at("work_mem"), "SET \"work_mem\" TO '64MB'");
  EXPECT_EQ(s.count("options"), 0u);
}

TEST(SettingsFromStartup, OptionsWithExtraSpacesAndEqualsInValue) {
  const Settings s = settings_from_startup(
      {{"options", "  -c  statement_timeout=5s   -c x.y=a=b  --DateStyle=ISO "}});
  EXPECT_EQ(s.at("statement_timeout"), "SET \"statement_timeout\" TO '5s'");
  EXPECT_EQ(s.at("x.y"), "SET \"x.y\" TO 'a=b'");
  EXPECT_EQ(s.at("datestyle"), "SET \"datestyle\" TO 'ISO'");
  EXPECT_EQ(s.size(), 3u);
}

TEST(SettingsFromStartup, OptionWithAttachedDashC) {
  // postgres parses options with getopt: "-cname=value" is the same as "-c name=value".
  const Settings s = settings_from_startup({{"options", "-csearch_path=foo"}});
  EXPECT_EQ(s.count("-csearch_path"), 0u) << "a setting named \"-csearch_path\" would make every "
                                             "settings sync fail";
  ASSERT_EQ(s.count("search_path"), 1u);
  EXPECT_EQ(s.at("search_path"), "SET \"search_path\" TO 'foo'");
}

TEST(SettingsFromStartup, LongOptionDashesBecomeUnderscores) {
  // postgres turns "--work-mem=64MB" into work_mem (ParseLongOption).
  const Settings s = settings_from_startup({{"options", "--work-mem=64MB"}});
  EXPECT_EQ(s.count("work-mem"), 0u);
  ASSERT_EQ(s.count("work_mem"), 1u);
  EXPECT_EQ(s.at("work_mem"), "SET \"work_mem\" TO '64MB'");
}

// ---------------------------------------------------------------- settings_sync_sql

TEST(SettingsSyncSql, EqualSettingsNeedNothing) {
  EXPECT_EQ(settings_sync_sql(Settings{}, Settings{}), "");
  const Settings s = {{"x", "SET x = 1"}, {"timezone", "SET TIME ZONE 'UTC'"}};
  EXPECT_EQ(settings_sync_sql(s, s), "");
}

TEST(SettingsSyncSql, DifferingOrMissingOnServerIsSet) {
  const Settings client = {{"a", "SET a = 1"}, {"b", "SET b = 2"}};
  const Settings server = {{"a", "SET a = 1"}, {"b", "SET b = 3"}};
  EXPECT_EQ(settings_sync_sql(client, server), "SET b = 2;");
  EXPECT_EQ(settings_sync_sql(client, {}), "SET a = 1;SET b = 2;");
}

TEST(SettingsSyncSql, ServerOnlyIsReset) {
  const Settings server = {{"work_mem", "SET work_mem = '1GB'"},
                           {"role", "SET ROLE admin"},
                           {"session_authorization", "SET SESSION AUTHORIZATION bob"}};
  const std::string sql = settings_sync_sql({}, server);
  EXPECT_EQ(sql, "RESET ROLE;RESET SESSION AUTHORIZATION;RESET \"work_mem\";");
}

TEST(SettingsSyncSql, SessionCharacteristicsResetAllThree) {
  const std::string sql = settings_sync_sql(
      {}, {{"session_characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"}});
  EXPECT_NE(sql.find("RESET default_transaction_isolation"), std::string::npos) << sql;
  EXPECT_NE(sql.find("RESET default_transaction_read_only"), std::string::npos) << sql;
  EXPECT_NE(sql.find("RESET default_transaction_deferrable"), std::string::npos) << sql;
}

TEST(SettingsSyncSql, SetsAndResetsTogether) {
  const Settings client = {{"x", "SET x = 2"}};
  const Settings server = {{"x", "SET x = 1"}, {"y", "SET y = 1"}};
  EXPECT_EQ(settings_sync_sql(client, server), "SET x = 2;RESET \"y\";");
}

TEST(SettingsSyncSql, AppliedSyncMakesServerEqual) {
  // What the session does: apply the sync SQL, then copy the client's settings.
  Settings client = settings_from_startup({{"application_name", "a"}});
  apply_change(client, *parse_setting_change("SET search_path TO s1"));
  Settings server = settings_from_startup({{"application_name", "b"}, {"TimeZone", "UTC"}});
  const std::string sql = settings_sync_sql(client, server);
  EXPECT_EQ(sql, "SET \"application_name\" TO 'a';SET search_path TO s1;RESET \"timezone\";");
  server = client;
  EXPECT_EQ(settings_sync_sql(client, server), "");
}

// ---------------------------------------------------------------- quoting

TEST(SettingsQuoting, Literal) {
  EXPECT_EQ(quote_literal(""), "''");
  EXPECT_EQ(quote_literal("abc"), "'abc'");
  EXPECT_EQ(quote_literal("it's"), "'it''s'");
  EXPECT_EQ(quote_literal("''"), "''''''");
  EXPECT_EQ(quote_literal("a\"b"), "'a\"b'");
  EXPECT_EQ(quote_literal("'; DROP TABLE t; --"), "'''; DROP TABLE t; --'");
}

TEST(SettingsQuoting, Identifier) {
  EXPECT_EQ(quote_identifier(""), "\"\"");
  EXPECT_EQ(quote_identifier("work_mem"), "\"work_mem\"");
  EXPECT_EQ(quote_identifier("My\"Name"), "\"My\"\"Name\"");
  EXPECT_EQ(quote_identifier("\""), "\"\"\"\"");
  EXPECT_EQ(quote_identifier("a'b"), "\"a'b\"");
}

TEST(SharedSettings, EqualStartupSettingsShareOneMap) {
  const SharedSettings a = SharedSettings::intern({{"application_name", "SET x TO 'a'"}});
  const SharedSettings b = SharedSettings::intern({{"application_name", "SET x TO 'a'"}});
  const SharedSettings c = SharedSettings::intern({{"application_name", "SET x TO 'c'"}});
  EXPECT_TRUE(a.same_as(b));
  EXPECT_FALSE(a.same_as(c));
  EXPECT_EQ(settings_sync_sql(a, b), "");
  EXPECT_EQ(settings_sync_sql(c, a), "SET x TO 'c';");
  EXPECT_TRUE(SharedSettings::intern({}).same_as(SharedSettings()));
}

TEST(SharedSettings, AChangeCopiesAndLeavesTheOthersAlone) {
  SharedSettings mine = SharedSettings::intern({{"datestyle", "SET datestyle TO 'ISO'"}});
  const SharedSettings theirs = mine;
  mine.apply({SettingChange::Op::Set, "timezone", "SET timezone = 'UTC'"});
  EXPECT_FALSE(mine.same_as(theirs));
  EXPECT_EQ(theirs.get().size(), 1u);
  EXPECT_EQ(mine.get().size(), 2u);
  // The server connection still has the old settings: only the new one is sent.
  EXPECT_EQ(settings_sync_sql(mine, theirs), "SET timezone = 'UTC';");
  mine.apply({SettingChange::Op::ResetAll, "", ""});
  EXPECT_TRUE(mine.get().empty());
  EXPECT_EQ(settings_sync_sql(mine, theirs), "RESET \"datestyle\";");
}

}  // namespace
}  // namespace shardgate::session
