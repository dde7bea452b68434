// Which MySQL statements the proxy follows (SET, USE), which pin a client to
// its server connection, and which it refuses.
#include "proxy/session/my_session_state.h"

#include <gtest/gtest.h>

#include "router/classify.h"

namespace shardgate::session {
namespace {

SessionChange change(std::string_view sql) {
  return classify_session_change(sql, router::analyze(sql, router::Dialect::Mysql, {}));
}

TEST(MySessionState, SetAndUseAreFollowed) {
  EXPECT_EQ(change("SET NAMES utf8mb4").kind, SessionChange::Kind::Setting);
  EXPECT_EQ(change("set session sql_mode = 'ANSI_QUOTES'").kind, SessionChange::Kind::Setting);
  EXPECT_EQ(change("SET autocommit=0").kind, SessionChange::Kind::Setting);
  const auto use = change("USE `my``db`");
  EXPECT_EQ(use.kind, SessionChange::Kind::Schema);
  EXPECT_EQ(use.text, "my`db");
  EXPECT_EQ(change("use app").text, "app");
}

TEST(MySessionState, NotSessionState) {
  EXPECT_EQ(change("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").kind,
            SessionChange::Kind::None);
  EXPECT_EQ(change("SET STATEMENT max_statement_time=1 FOR SELECT 1").kind,
            SessionChange::Kind::None);
  EXPECT_EQ(change("SET @x = 1").kind, SessionChange::Kind::None);  // pinned instead
  EXPECT_EQ(change("SELECT 1").kind, SessionChange::Kind::None);
  EXPECT_EQ(change("SET NAMES utf8; SELECT 1").kind, SessionChange::Kind::None);
}

TEST(MySessionState, PinningStatements) {
  const char* pins[] = {"SET @x := 1",
                        "SELECT @total := SUM(v) FROM t",
                        "select @`quoted`",
                        "CREATE TEMPORARY TABLE tmp (i int)",
                        "SELECT GET_LOCK('a', 1)",
                        "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
                        "LOCK TABLES t WRITE",
                        "PREPARE s FROM 'SELECT 1'",
                        "EXECUTE s",
                        "DEALLOCATE PREPARE s",
                        "HANDLER t OPEN",
                        "XA START 'x'",
                        "SET NAMES latin1; SELECT 1",
                        "SELECT 1; USE other"};
  for (const char* sql : pins) EXPECT_TRUE(pins_session(sql)) << sql;
  const char* free[] = {"SELECT @@port",       "SELECT 'a@b'",
                        "SELECT `a@b` FROM t", "INSERT INTO t VALUES ('@x')",
                        "SELECT 1 -- @x",      "UPDATE t SET v = 1"};
  for (const char* sql : free) EXPECT_FALSE(pins_session(sql)) << sql;
}

TEST(MySessionState, LoadDataLocal) {
  EXPECT_TRUE(is_load_data_local("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t"));
  EXPECT_TRUE(is_load_data_local("load data low_priority local infile 'f' into table t"));
  EXPECT_TRUE(is_load_data_local("/* c */ LOAD DATA CONCURRENT LOCAL INFILE 'f' INTO TABLE t"));
  EXPECT_FALSE(is_load_data_local("LOAD DATA INFILE '/tmp/f' INTO TABLE t"));
  EXPECT_FALSE(is_load_data_local("SELECT 'load data local'"));
}

TEST(MySessionState, ReadsLastInsertId) {
  EXPECT_TRUE(reads_last_insert_id("SELECT LAST_INSERT_ID()"));
  EXPECT_TRUE(reads_last_insert_id("select @@identity"));
  EXPECT_TRUE(reads_last_insert_id("SELECT @@session.last_insert_id"));
  EXPECT_TRUE(reads_last_insert_id("INSERT INTO c (parent) VALUES (last_insert_id())"));
  EXPECT_FALSE(reads_last_insert_id("SELECT 'last_insert_id()'"));
  EXPECT_FALSE(reads_last_insert_id("SELECT @@port"));
}

TEST(MySessionState, InspectAnswersEverythingFromOneLexing) {
  const std::string_view sql = "SET @x := LAST_INSERT_ID()";
  const auto f = inspect_statement(sql, router::analyze(sql, router::Dialect::Mysql, {}));
  EXPECT_TRUE(f.pins);
  EXPECT_TRUE(f.reads_insert_id);
  EXPECT_FALSE(f.kill);
  EXPECT_FALSE(f.load_data_local);
  EXPECT_EQ(f.change.kind, SessionChange::Kind::None);
  const std::string_view use = "USE app";
  EXPECT_EQ(inspect_statement(use, router::analyze(use, router::Dialect::Mysql, {})).change.text,
            "app");
}

TEST(MySessionState, Kill) {
  auto k = parse_kill("KILL QUERY 42");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->id, 42u);
  EXPECT_FALSE(k->whole_connection);
  k = parse_kill("kill 7");
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->whole_connection);
  k = parse_kill("KILL CONNECTION 9;");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->id, 9u);
  EXPECT_FALSE(parse_kill("KILL USER app"));
  EXPECT_FALSE(parse_kill("KILL QUERY ID 5"));
  EXPECT_FALSE(parse_kill("KILL 99999999999"));
  EXPECT_FALSE(parse_kill("SELECT 1"));
}

}  // namespace
}  // namespace shardgate::session
