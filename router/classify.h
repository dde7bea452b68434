// SQL statement classification: what kind of statement a text is and whether
// it must run on the primary. See router/statement.h for the result.
#pragma once

#include <string_view>

#include "router/statement.h"

namespace shardgate::router {

// Classifies `sql` (one or several statements) without a full parse. Never
// throws and never fails: text it cannot read (an unterminated string or
// comment) is classified Utility with needs_primary = true, so that doubt
// always resolves to the primary.
Statement analyze(std::string_view sql, Dialect dialect, const AnalyzeOptions& options);

}  // namespace shardgate::router
