#include "replication/test_decoding.h"

#include <gtest/gtest.h>

namespace shardgate::replication {
namespace {

// Lines as PostgreSQL 15's test_decoding printed them in the sandbox.
DecodedChange parsed(const std::string& line) {
  auto r = parse_test_decoding(line);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  EXPECT_TRUE(r && *r) << line;
  return r && *r ? **r : DecodedChange{};
}

std::string sql(const std::string& line, const std::vector<std::string>& key = {}) {
  auto s = change_sql(parsed(line), key);
  EXPECT_TRUE(s) << (s ? "" : s.error().message());
  return s ? *s : "";
}

TEST(TestDecoding, InsertKeepsLiteralsTypesAndNulls) {
  EXPECT_EQ(sql("table public.e: INSERT: id[bigint]:1 origin[character varying]:'x''y\\z' "
                "arr[integer[]]:'{1,2}' b[boolean]:true n[numeric]:-1.5 t[text]:null"),
            "INSERT INTO public.e (id, origin, arr, b, n, t) VALUES (CAST(1 AS bigint), "
            "CAST('x''y\\z' AS character varying), CAST('{1,2}' AS integer[]), CAST(true AS "
            "boolean), CAST(-1.5 AS numeric), NULL)");
}

TEST(TestDecoding, QuotedNamesAndValuesWithSpacesStayWhole) {
  EXPECT_EQ(sql("table \"My Schema\".\"odd: INSERT: t\": INSERT: \"a \"\"b\"\"\"[text]:'one two' "
                "c[timestamp with time zone]:'2026-11-25 10:00:00+00'"),
            "INSERT INTO \"My Schema\".\"odd: INSERT: t\" (\"a \"\"b\"\"\", c) VALUES (CAST('one "
            "two' AS text), CAST('2026-11-25 10:00:00+00' AS timestamp with time zone))");
}

TEST(TestDecoding, UpdateFindsItsRowByTheOldKeyOrThePrimaryKey) {
  EXPECT_EQ(sql("table public.e: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 "
                "t[text]:'hello'"),
            "UPDATE public.e SET id = CAST(2 AS bigint), t = CAST('hello' AS text) WHERE id = "
            "CAST(1 AS bigint)");
  EXPECT_EQ(
      sql("table public.e: UPDATE: id[bigint]:1 t[text]:'hello' big[text]:unchanged-toast-datum",
          {"id"}),
      "UPDATE public.e SET id = CAST(1 AS bigint), t = CAST('hello' AS text) WHERE id = "
      "CAST(1 AS bigint)");
  // Without the key columns it cannot say which row.
  EXPECT_FALSE(change_sql(parsed("table public.e: UPDATE: id[bigint]:1 t[text]:'x'"), {}));
}

TEST(TestDecoding, DeleteAndTruncate) {
  EXPECT_EQ(sql("table public.e: DELETE: id[bigint]:2 k[text]:null"),
            "DELETE FROM public.e WHERE id = CAST(2 AS bigint) AND k IS NULL");
  EXPECT_EQ(sql("table public.e: TRUNCATE: (no-flags)"), "TRUNCATE public.e");
  EXPECT_EQ(sql("table public.e: TRUNCATE: restart_seqs cascade"),
            "TRUNCATE public.e RESTART IDENTITY CASCADE");
}

TEST(TestDecoding, OtherLinesAreNoChangeAndBadOnesAreErrors) {
  auto begin = parse_test_decoding("BEGIN 733");
  ASSERT_TRUE(begin);
  EXPECT_FALSE(*begin);
  EXPECT_FALSE(parse_test_decoding("table public.e: DELETE: (no-tuple-data)"));
  EXPECT_FALSE(parse_test_decoding("table public.e: INSERT: id[bigint]:'unterminated"));
  EXPECT_FALSE(parse_test_decoding("table public.e: INSERT: id[bigint"));
  EXPECT_FALSE(parse_test_decoding("table public.e: SOMETHING ELSE"));
}

}  // namespace
}  // namespace shardgate::replication
