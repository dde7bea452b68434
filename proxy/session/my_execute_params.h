// The bound parameters of a MySQL client's COM_STMT_EXECUTE, read for the
// router (its keys) and written out as literals (an execution that runs as
// text on several shards). Values sent before with COM_STMT_SEND_LONG_DATA
// count as the parameter's value, as in the server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/protocol/mysql/messages.h"
#include "router/shard_route.h"

namespace shardgate::session {

// The COM_STMT_SEND_LONG_DATA payloads of one execution joined per
// parameter; nullopt for a parameter that got none.
std::vector<std::optional<std::string>> long_data_values(const std::vector<std::string>& chunks,
                                                         std::uint16_t count);

// Parameters as the router takes them: integers as decimal text (kept in
// `storage`), strings as their bytes. `raw_types`: the types bound by an
// earlier execution (2 bytes each), for one that binds none.
Result<std::vector<router::ParamValue>> execute_params(
    const mysql::StmtExecute& exec, std::string_view raw_types, std::uint16_t count,
    const std::vector<std::optional<std::string>>& long_data, std::vector<std::string>& storage);

// Parameters as SQL literals (mysql::sql_literal).
Result<std::vector<std::string>> execute_literals(
    const mysql::StmtExecute& exec, std::string_view raw_types, std::uint16_t count,
    const std::vector<std::optional<std::string>>& long_data, bool no_backslash_escapes);

}  // namespace shardgate::session
