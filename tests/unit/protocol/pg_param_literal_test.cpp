#include <gtest/gtest.h>

#include "proxy/protocol/postgres/param_literal.h"

namespace shardgate::pg {
namespace {

std::string literal(BindParam p, std::uint32_t oid) {
  auto l = param_literal(p, oid);
  return l ? *l : "error: " + l.error().message();
}

BindParam text(std::string_view v) {
  return BindParam{false, false, v};
}
BindParam binary(std::string_view v) {
  return BindParam{false, true, v};
}

TEST(PgParamLiteral, TextValuesAreEscapedStringsCastToTheDeclaredType) {
  EXPECT_EQ(literal(text("42"), 0), "'42'");
  EXPECT_EQ(literal(text("42"), 20), "'42'::int8");
  EXPECT_EQ(literal(text("o'neil"), 0), "'o''neil'");
  EXPECT_EQ(literal(text("it's a \\ path"), 25), "E'it''s a \\\\ path'::text");
  EXPECT_EQ(literal(text("x"), 99999), "'x'");  // a type the proxy cannot name: inferred
  EXPECT_EQ(literal(BindParam{true, false, {}}, 23), "NULL");
}

TEST(PgParamLiteral, BinaryValuesOfCommonTypesAreDecoded) {
  EXPECT_EQ(literal(binary(std::string_view("\xff\xfe", 2)), 21), "'-2'::int2");
  EXPECT_EQ(literal(binary(std::string_view("\x00\x00\x01\x00", 4)), 23), "'256'::int4");
  EXPECT_EQ(literal(binary(std::string_view("\x00\x00\x00\x00\x00\x00\x1b\x59", 8)), 20),
            "'7001'::int8");
  EXPECT_EQ(literal(binary(std::string_view("\x01", 1)), 16), "'true'::bool");
  EXPECT_EQ(literal(binary(std::string_view("\x3f\xf8\x00\x00\x00\x00\x00\x00", 8)), 701),
            "'1.5'::float8");
  EXPECT_EQ(literal(binary(std::string_view("\x00\x27", 2)), 17), "E'\\\\x0027'::bytea");
  EXPECT_EQ(literal(binary("abc"), 25), "'abc'::text");
  EXPECT_EQ(literal(binary(std::string_view("\x01{}", 3)), 3802), "'{}'::jsonb");
  EXPECT_EQ(literal(binary(std::string_view("\x12\x34\x56\x78\x9a\xbc\xde\xf0\x12\x34\x56\x78"
                                            "\x9a\xbc\xde\xf0",
                                            16)),
                    2950),
            "'12345678-9abc-def0-1234-56789abcdef0'::uuid");
}

TEST(PgParamLiteral, BinaryValuesItCannotReadAreErrors) {
  EXPECT_EQ(literal(binary("abc"), 23).substr(0, 6), "error:");    // 3 bytes for an int4
  EXPECT_EQ(literal(binary("abc"), 1114).substr(0, 6), "error:");  // binary timestamp
  EXPECT_EQ(literal(binary("abc"), 0).substr(0, 6), "error:");     // type unknown
}

TEST(PgParamLiteral, ParseParameterTypes) {
  EXPECT_EQ(parse_param_types(""), std::vector<std::uint32_t>{});
  EXPECT_EQ(parse_param_types(std::string_view("\x00\x02\x00\x00\x00\x17\x00\x00\x00\x00", 10)),
            (std::vector<std::uint32_t>{23, 0}));
  EXPECT_FALSE(parse_param_types(std::string_view("\x00\x02\x00\x00\x00\x17", 6)));
}

}  // namespace
}  // namespace shardgate::pg
