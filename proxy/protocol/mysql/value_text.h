// Binary-protocol values as SQL text and back. A read over several shards
// runs as text on each shard and is merged as text (router/merger.h); a
// client that executed a prepared statement gets its rows in the binary
// format, so each merged cell is converted back by its column's type. A
// write over several shards from a prepared statement runs as text with its
// parameters written in as literals. Sans-io.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/protocol/mysql/messages.h"

namespace shardgate::mysql {

// A cell of a text resultset as the binary protocol carries it for a column
// of `type`: integers and floating-point numbers parsed, dates and times
// split into their fields, everything else (DECIMAL, strings, BIT, JSON ...)
// the same bytes. The returned value may point into `text`.
Result<BinaryValue> binary_value_from_text(std::string_view text, BinaryType type);

// A parameter value as an SQL literal that reads back as the same value:
// NULL, a decimal integer, a double with an exponent (so it stays a double),
// a quoted date or time, or a quoted string. Strings follow the session's
// escaping rule (the server's NO_BACKSLASH_ESCAPES status flag); a BLOB
// parameter, or a string with a NUL byte, becomes a hex literal X'..'.
Result<std::string> sql_literal(const BinaryValue& value, BinaryType type,
                                bool no_backslash_escapes);

}  // namespace shardgate::mysql
