#include "router/inline_params.h"

#include <charconv>

namespace shardgate::router {

Result<std::string> inline_parameters(std::string_view sql, Dialect dialect, LexerMode mode,
                                      std::span<const std::string> literals) {
  SqlLexer lexer(sql, dialect, mode);
  std::string out;
  out.reserve(sql.size() + 16 * literals.size());
  std::size_t copied = 0;  // sql[0, copied) is in out
  std::size_t next = 0;    // MySQL: the next `?`
  for (Token t = lexer.next(); t.kind != TokenKind::End; t = lexer.next()) {
    if (t.kind == TokenKind::Error)
      return make_error("the statement text does not lex, so its parameters cannot be placed");
    if (t.kind != TokenKind::Param) continue;
    std::size_t index = next;
    if (dialect == Dialect::Postgres) {
      unsigned n = 0;
      const char* end = t.text.data() + t.text.size();
      auto [ptr, ec] = std::from_chars(t.text.data() + 1, end, n);
      if (ec != std::errc() || ptr != end || n == 0)
        return make_error("malformed parameter " + std::string(t.text));
      index = n - 1;
    } else {
      ++next;
    }
    if (index >= literals.size())
      return make_error("the statement has more parameters than the " +
                        std::to_string(literals.size()) + " bound");
    const auto at = static_cast<std::size_t>(t.text.data() - sql.data());
    out.append(sql, copied, at - copied);
    // A literal next to a word or number must not join it (1?2 is 1 ? 2).
    out.push_back(' ');
    out += literals[index];
    out.push_back(' ');
    copied = at + t.text.size();
  }
  if (dialect == Dialect::Mysql && next != literals.size())
    return make_error("the statement has " + std::to_string(next) + " parameters and " +
                      std::to_string(literals.size()) + " are bound");
  out.append(sql, copied, std::string_view::npos);
  return out;
}

}  // namespace shardgate::router
