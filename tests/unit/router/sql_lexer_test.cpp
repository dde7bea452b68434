#include "router/sql_lexer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shardgate::router {
namespace {

using T = TokenKind;
constexpr Dialect PG = Dialect::Postgres;
constexpr Dialect MY = Dialect::Mysql;

struct Lexed {
  std::vector<TokenKind> kinds;
  std::vector<std::string> texts;
};

Lexed lex(std::string_view sql, Dialect dialect, LexerMode mode) {
  Lexed out;
  SqlLexer lexer(sql, dialect, mode);
  for (int guard = 0; guard < 1000; ++guard) {
    const Token t = lexer.next();
    if (t.kind == T::End) break;
    out.kinds.push_back(t.kind);
    out.texts.emplace_back(t.text);
    if (t.kind == T::Error) break;
  }
  return out;
}

Lexed lex(std::string_view sql, Dialect dialect) {
  return lex(sql, dialect, default_lexer_mode(dialect));
}

TEST(SqlLexer, PostgresBasics) {
  const Lexed l = lex("SELECT a, 'b''c' FROM \"T\" WHERE x = $1;", PG);
  EXPECT_EQ(l.kinds, (std::vector<T>{T::Word, T::Word, T::Comma, T::String, T::Word, T::QuotedIdent,
                                     T::Word, T::Word, T::Operator, T::Param, T::Semicolon}));
  EXPECT_EQ(l.texts[3], "'b''c'");
  EXPECT_EQ(l.texts[5], "\"T\"");
  EXPECT_EQ(l.texts[9], "$1");
}

TEST(SqlLexer, PostgresDollarQuotes) {
  EXPECT_EQ(lex("$tag$ x $y$ ' $tag$", PG).texts,
            (std::vector<std::string>{"$tag$ x $y$ ' $tag$"}));
  EXPECT_EQ(lex("$$a$$ $$b$$", PG).kinds, (std::vector<T>{T::String, T::String}));
  EXPECT_EQ(lex("a$b", PG).kinds, (std::vector<T>{T::Word}));
  EXPECT_EQ(lex("$1$", PG).kinds, (std::vector<T>{T::Param, T::Operator}));
  EXPECT_EQ(lex("$$ open", PG).kinds.back(), T::Error);
  EXPECT_EQ(lex("$a$ x $b$", PG).kinds.back(), T::Error);
}

TEST(SqlLexer, PostgresEscapeStrings) {
  EXPECT_EQ(lex(R"(E'a\'b' x)", PG).texts, (std::vector<std::string>{R"(E'a\'b')", "x"}));
  EXPECT_EQ(lex(R"(e'\\' x)", PG).kinds, (std::vector<T>{T::String, T::Word}));
  EXPECT_EQ(lex(R"(E'a\')", PG).kinds.back(), T::Error);
  // Without E, standard_conforming_strings: the backslash is a plain character.
  EXPECT_EQ(lex(R"('a\' x)", PG).kinds, (std::vector<T>{T::String, T::Word}));
  EXPECT_EQ(lex(R"('a\' x)", PG, LexerMode{true, false}).kinds.back(), T::Error);
}

TEST(SqlLexer, BackslashTracking) {
  SqlLexer pg(R"('a\b' E'c\d')", PG);
  while (pg.next().kind != T::End) {
  }
  EXPECT_TRUE(pg.backslash_in_single_quotes());

  SqlLexer escape_only(R"(E'c\d')", PG);
  while (escape_only.next().kind != T::End) {
  }
  EXPECT_FALSE(escape_only.backslash_in_single_quotes());

  SqlLexer my(R"("a\b")", MY);
  while (my.next().kind != T::End) {
  }
  EXPECT_FALSE(my.backslash_in_single_quotes());
  EXPECT_TRUE(my.backslash_in_double_quotes());
}

TEST(SqlLexer, PostgresComments) {
  EXPECT_EQ(lex("/* a /* b */ c */ x", PG).kinds, (std::vector<T>{T::Comment, T::Word}));
  EXPECT_EQ(lex("1--1\n2", PG).kinds, (std::vector<T>{T::Number, T::Comment, T::Number}));
  EXPECT_EQ(lex("/* a /* b */", PG).kinds.back(), T::Error);
  EXPECT_EQ(lex("/*/ x", PG).kinds.back(), T::Error);
  EXPECT_EQ(lex("2*/*c*/3", PG).kinds,
            (std::vector<T>{T::Number, T::Operator, T::Comment, T::Number}));
  EXPECT_EQ(lex("# x", PG).kinds, (std::vector<T>{T::Operator, T::Word}));
}

TEST(SqlLexer, PostgresOperatorsAndNumbers) {
  EXPECT_EQ(lex("x::int", PG).texts, (std::vector<std::string>{"x", "::", "int"}));
  EXPECT_EQ(lex("a ? b", PG).kinds, (std::vector<T>{T::Word, T::Operator, T::Word}));
  EXPECT_EQ(lex("1.5e-3 .5 0x1F 1_000", PG).texts,
            (std::vector<std::string>{"1.5e-3", ".5", "0x1F", "1_000"}));
  EXPECT_EQ(lex("s.t", PG).kinds, (std::vector<T>{T::Word, T::Dot, T::Word}));
  EXPECT_EQ(lex("f(x)", PG).kinds, (std::vector<T>{T::Word, T::LParen, T::Word, T::RParen}));
  EXPECT_EQ(lex("1-1", PG).kinds, (std::vector<T>{T::Number, T::Operator, T::Number}));
}

TEST(SqlLexer, PostgresNulFailsClosed) {
  const std::string sql("SELECT 1\0", 9);
  EXPECT_EQ(lex(sql, PG).kinds, (std::vector<T>{T::Error}));
}

TEST(SqlLexer, UnterminatedQuotes) {
  EXPECT_EQ(lex("'abc", PG).kinds.back(), T::Error);
  EXPECT_EQ(lex("\"abc", PG).kinds.back(), T::Error);
  EXPECT_EQ(lex("`abc", MY).kinds.back(), T::Error);
  EXPECT_EQ(lex("\"abc", MY).kinds.back(), T::Error);
  EXPECT_EQ(lex(R"('a\')", MY).kinds.back(), T::Error);
}

TEST(SqlLexer, ErrorIsSticky) {
  SqlLexer lexer("'open SELECT 1", PG);
  EXPECT_EQ(lexer.next().kind, T::Error);
  EXPECT_EQ(lexer.next().kind, T::Error);
  EXPECT_EQ(lexer.next().kind, T::Error);
}

TEST(SqlLexer, MysqlQuoting) {
  const Lexed l = lex("SELECT `a``b`, \"s\"\"t\", 'u\\'v' FROM t WHERE x = ?", MY);
  EXPECT_EQ(l.kinds,
            (std::vector<T>{T::Word, T::QuotedIdent, T::Comma, T::String, T::Comma, T::String,
                            T::Word, T::Word, T::Word, T::Word, T::Operator, T::Param}));
  EXPECT_EQ(l.texts[5], "'u\\'v'");
  // NO_BACKSLASH_ESCAPES: the backslash no longer escapes the quote.
  EXPECT_EQ(lex(R"('u\'v')", MY, LexerMode{false, false}).kinds,
            (std::vector<T>{T::String, T::Word, T::Error}));
  EXPECT_EQ(lex("$col", MY).kinds, (std::vector<T>{T::Word}));
}

TEST(SqlLexer, MysqlComments) {
  EXPECT_EQ(lex("a#b\nc", MY).kinds, (std::vector<T>{T::Word, T::Comment, T::Word}));
  EXPECT_EQ(lex("1--1", MY).texts, (std::vector<std::string>{"1", "--", "1"}));
  EXPECT_EQ(lex("1-- x", MY).kinds, (std::vector<T>{T::Number, T::Comment}));
  EXPECT_EQ(lex("1 --\tx", MY).kinds, (std::vector<T>{T::Number, T::Comment}));
  // MySQL block comments do not nest: the first */ ends it.
  EXPECT_EQ(lex("/* a /* b */ c", MY).kinds, (std::vector<T>{T::Comment, T::Word}));
}

TEST(SqlLexer, MysqlExecutableComments) {
  EXPECT_EQ(lex("/*!50000 SELECT */ 1", MY).texts, (std::vector<std::string>{"SELECT", "1"}));
  EXPECT_EQ(lex("/*!SELECT 1*/", MY).texts, (std::vector<std::string>{"SELECT", "1"}));
  EXPECT_EQ(lex("/*M!100100 x */", MY).texts, (std::vector<std::string>{"x"}));
  EXPECT_EQ(lex("/*!50000 a+*/ b", MY).texts, (std::vector<std::string>{"a", "+", "b"}));
  EXPECT_EQ(lex("/*!50000 x", MY).kinds.back(), T::Error);
  EXPECT_EQ(lex("/*+ hint */ x", MY).kinds, (std::vector<T>{T::Comment, T::Word}));
}

TEST(SqlLexer, MysqlNulOnlyInsideStrings) {
  EXPECT_EQ(lex(std::string("'a\0b'", 5), MY).kinds, (std::vector<T>{T::String}));
  EXPECT_EQ(lex(std::string("a \0", 3), MY).kinds, (std::vector<T>{T::Word, T::Error}));
}

TEST(SqlLexer, KeywordHelpers) {
  EXPECT_TRUE(iequals("SeLeCt", "select"));
  EXPECT_FALSE(iequals("selects", "select"));
  EXPECT_TRUE(istarts_with("PG_ADVISORY_LOCK", "pg_advisory_"));
  EXPECT_TRUE(is_keyword(Token{T::Word, "FROM"}, "from"));
  EXPECT_FALSE(is_keyword(Token{T::QuotedIdent, "\"from\""}, "from"));
  EXPECT_FALSE(is_keyword(Token{T::String, "from"}, "from"));
}

}  // namespace
}  // namespace shardgate::router
