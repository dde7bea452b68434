// Statement text with its bound parameters written in as literals. A
// statement that needs several shards runs on each as plain text (merged
// reads, split writes: router/merge_plan.h, router/write_split.h), whose
// rewriting works on literals; a prepared statement's execution gets there
// through this. Pure.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "router/sql_lexer.h"

namespace shardgate::router {

// MySQL: the k-th `?` becomes literals[k]; PostgreSQL: `$n` becomes
// literals[n-1]. Placeholders inside strings, comments and quoted names are
// text, not parameters (the lexer decides, with `mode`). An error when the
// text and the literals disagree (a missing value, a value left over in
// MySQL) or the text does not lex.
Result<std::string> inline_parameters(std::string_view sql, Dialect dialect, LexerMode mode,
                                      std::span<const std::string> literals);

}  // namespace shardgate::router
