#include "router/inline_params.h"

#include <gtest/gtest.h>

namespace shardgate::router {
namespace {

std::string inline_my(std::string_view sql, std::vector<std::string> literals) {
  auto r = inline_parameters(sql, Dialect::Mysql, default_lexer_mode(Dialect::Mysql), literals);
  return r ? *r : "error: " + r.error().message();
}

std::string inline_pg(std::string_view sql, std::vector<std::string> literals) {
  auto r =
      inline_parameters(sql, Dialect::Postgres, default_lexer_mode(Dialect::Postgres), literals);
  return r ? *r : "error: " + r.error().message();
}

TEST(InlineParameters, MysqlPlaceholdersTakeTheLiteralsInOrder) {
  EXPECT_EQ(inline_my("SELECT * FROM t WHERE id IN (?,?)", {"1", "'a'"}),
            "SELECT * FROM t WHERE id IN ( 1 , 'a' )");
  EXPECT_EQ(inline_my("INSERT INTO t VALUES (?, ?), (?, NULL)", {"1", "NULL", "2e0"}),
            "INSERT INTO t VALUES ( 1 ,  NULL ), ( 2e0 , NULL)");
}

TEST(InlineParameters, PlaceholdersInStringsCommentsAndNamesAreText) {
  EXPECT_EQ(inline_my("SELECT '?', `?`, \"?\" /* ? */ FROM t WHERE a = ? -- ?", {"7"}),
            "SELECT '?', `?`, \"?\" /* ? */ FROM t WHERE a =  7  -- ?");
  EXPECT_EQ(inline_pg("SELECT '$1', \"$1\" FROM t WHERE a = $1", {"7"}),
            "SELECT '$1', \"$1\" FROM t WHERE a =  7 ");
}

TEST(InlineParameters, ALiteralNeverJoinsTheTextAroundIt) {
  // "-?" with -5 must not become "--5", a comment.
  EXPECT_EQ(inline_my("SELECT -?", {"-5"}), "SELECT - -5 ");
}

TEST(InlineParameters, PostgresNumbersNameTheLiteral) {
  EXPECT_EQ(inline_pg("UPDATE t SET v = $2 WHERE id IN ($1, $1)", {"3", "'x'"}),
            "UPDATE t SET v =  'x'  WHERE id IN ( 3 ,  3 )");
}

TEST(InlineParameters, CountsThatDisagreeAreErrors) {
  EXPECT_EQ(inline_my("SELECT ?, ?", {"1"}).substr(0, 6), "error:");
  EXPECT_EQ(inline_my("SELECT ?", {"1", "2"}).substr(0, 6), "error:");
  EXPECT_EQ(inline_pg("SELECT $3", {"1", "2"}).substr(0, 6), "error:");
  EXPECT_EQ(inline_my("SELECT 'unterminated ?", {"1"}).substr(0, 6), "error:");
}

}  // namespace
}  // namespace shardgate::router
