// parse_lsn must read exactly what PostgreSQL's pg_lsn type prints and refuse
// anything else: a misread position would pick the wrong failover candidate.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "replication/pg_monitor.h"

namespace shardgate::replication {
namespace {

TEST(ParseLsn, ReadsBothHalves) {
  auto lsn = parse_lsn("16/B374D848");
  ASSERT_TRUE(lsn);
  EXPECT_EQ(*lsn, 0x16B374D848u);
}

TEST(ParseLsn, ReadsZeroAndMaximum) {
  EXPECT_EQ(*parse_lsn("0/0"), 0u);
  EXPECT_EQ(*parse_lsn("FFFFFFFF/FFFFFFFF"), UINT64_MAX);
}

TEST(ParseLsn, AcceptsLowerCaseAndLeadingZeros) {
  EXPECT_EQ(*parse_lsn("a/00000b0c"), 0xA00000B0Cu);
  EXPECT_EQ(*parse_lsn("00000001/1"), 0x100000001u);
}

TEST(ParseLsn, RefusesMalformedText) {
  for (const char* bad :
       {"", "/", "0/", "/0", "16", "16B374D848", "0//0", "0/0/0", "x/0", "0/g", "-1/0", "+1/0",
        "0x1/0", " 0/0", "0/0 ", "0 /0", "1/2\n", "123456789/0", "0/123456789"}) {
    auto lsn = parse_lsn(bad);
    EXPECT_FALSE(lsn) << "'" << bad << "' parsed as " << (lsn ? *lsn : 0);
  }
}

TEST(ParseLsn, ErrorNamesTheInput) {
  auto lsn = parse_lsn("nope");
  ASSERT_FALSE(lsn);
  EXPECT_NE(lsn.error().message().find("'nope'"), std::string::npos);
}

TEST(ParseLsn, RefusesEmbeddedNul) {
  EXPECT_FALSE(parse_lsn(std::string_view("0/1\0", 4)));
}

TEST(FormatLsn, PrintsLikePostgres) {
  EXPECT_EQ(format_lsn(0), "0/0");
  EXPECT_EQ(format_lsn(0x16B374D848u), "16/B374D848");
  EXPECT_EQ(format_lsn(0x100000000u), "1/0");
  EXPECT_EQ(format_lsn(UINT64_MAX), "FFFFFFFF/FFFFFFFF");
}

TEST(FormatLsn, RoundTrips) {
  for (uint64_t lsn : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x1FFFFFFFF},
                       uint64_t{0x0123456789ABCDEF}, UINT64_MAX}) {
    auto parsed = parse_lsn(format_lsn(lsn));
    ASSERT_TRUE(parsed) << format_lsn(lsn);
    EXPECT_EQ(*parsed, lsn);
  }
}

}  // namespace
}  // namespace shardgate::replication
