#include <gtest/gtest.h>

#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/value_text.h"

namespace shardgate::mysql {
namespace {

BinaryValue from_text(std::string_view text, std::uint8_t type, bool is_unsigned = false) {
  auto v = binary_value_from_text(text, BinaryType{type, is_unsigned});
  EXPECT_TRUE(v) << text << ": " << v.error().message();
  return v ? *v : BinaryValue{};
}

std::string literal(const BinaryValue& v, std::uint8_t type, bool no_backslash = false) {
  auto l = sql_literal(v, BinaryType{type, false}, no_backslash);
  return l ? *l : "error: " + l.error().message();
}

TEST(ValueText, IntegersByTheirSign) {
  EXPECT_EQ(from_text("-5", kTypeTiny), BinaryValue{std::int64_t{-5}});
  EXPECT_EQ(from_text("18446744073709551615", kTypeLongLong, true),
            BinaryValue{std::uint64_t{18446744073709551615ull}});
  EXPECT_EQ(from_text("2024", kTypeYear), BinaryValue{std::int64_t{2024}});
  EXPECT_FALSE(binary_value_from_text("12x", BinaryType{kTypeLong, false}));
  EXPECT_FALSE(binary_value_from_text("-1", BinaryType{kTypeLong, true}));
}

TEST(ValueText, FloatingPointAndDecimal) {
  EXPECT_EQ(from_text("1.5", kTypeDouble), BinaryValue{1.5});
  EXPECT_EQ(from_text("0.25", kTypeFloat), BinaryValue{0.25f});
  EXPECT_EQ(from_text("-1e300", kTypeDouble), BinaryValue{-1e300});
  // DECIMAL travels as its text in the binary protocol too.
  EXPECT_EQ(from_text("12.3400", kTypeNewDecimal), BinaryValue{std::string_view("12.3400")});
}

TEST(ValueText, DatesAndTimes) {
  DateTime d{2026, 11, 24, 0, 0, 0, 0};
  EXPECT_EQ(from_text("2026-11-24", kTypeDate), BinaryValue{d});
  DateTime dt{2026, 11, 24, 21, 5, 9, 120000};
  EXPECT_EQ(from_text("2026-11-24 21:05:09.12", kTypeDateTime), BinaryValue{dt});
  EXPECT_EQ(from_text("0000-00-00 00:00:00", kTypeTimestamp), BinaryValue{DateTime{}});
  TimeValue t{true, 34, 22, 59, 59, 0};
  EXPECT_EQ(from_text("-838:59:59", kTypeTime), BinaryValue{t});
  EXPECT_FALSE(binary_value_from_text("2026-11", BinaryType{kTypeDate, false}));
  EXPECT_FALSE(binary_value_from_text("12:00", BinaryType{kTypeTime, false}));
  EXPECT_FALSE(binary_value_from_text("2026-11-24 10:00:00.", BinaryType{kTypeDateTime, false}));
}

TEST(ValueText, LiteralsReadBackAsTheSameValue) {
  EXPECT_EQ(literal(BinaryValue{}, kTypeNull), "NULL");
  EXPECT_EQ(literal(BinaryValue{std::int64_t{-42}}, kTypeLongLong), "-42");
  EXPECT_EQ(literal(BinaryValue{std::uint64_t{18446744073709551615ull}}, kTypeLongLong),
            "18446744073709551615");
  EXPECT_EQ(literal(BinaryValue{1.5}, kTypeDouble), "1.5e0");
  EXPECT_EQ(literal(BinaryValue{1e300}, kTypeDouble), "1e+300");
  EXPECT_EQ(literal(BinaryValue{0.1f}, kTypeFloat), "0.1e0");
  EXPECT_EQ(
      literal(BinaryValue{std::numeric_limits<double>::quiet_NaN()}, kTypeDouble).substr(0, 6),
      "error:");
  EXPECT_EQ(literal(BinaryValue{DateTime{2026, 1, 2, 3, 4, 5, 6}}, kTypeDateTime),
            "'2026-01-02 03:04:05.000006'");
  EXPECT_EQ(literal(BinaryValue{DateTime{2026, 1, 2, 0, 0, 0, 0}}, kTypeDate), "'2026-01-02'");
  EXPECT_EQ(literal(BinaryValue{TimeValue{true, 1, 2, 3, 4, 0}}, kTypeTime), "'-26:03:04'");
}

TEST(ValueText, StringsFollowTheSessionsEscaping) {
  const BinaryValue s{std::string_view("it's a \\ path")};
  EXPECT_EQ(literal(s, kTypeVarString), "'it''s a \\\\ path'");
  EXPECT_EQ(literal(s, kTypeVarString, true), "'it''s a \\ path'");
  EXPECT_EQ(literal(BinaryValue{std::string_view("a\0b", 3)}, kTypeString), "X'610062'");
  EXPECT_EQ(literal(BinaryValue{std::string_view("\xff\x01")}, kTypeBlob), "X'FF01'");
  EXPECT_EQ(literal(BinaryValue{std::string_view("")}, kTypeBlob), "X''");
}

}  // namespace
}  // namespace shardgate::mysql
