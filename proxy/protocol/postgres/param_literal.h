// A Bind parameter as an SQL literal. A prepared write that needs several
// shards runs as text on each (router/write_split.h splits its rows by
// literal), so its bound values are written into the text. Text-format
// values become quoted strings that read the same whatever
// standard_conforming_strings says ('..', or E'..' when the value holds a
// backslash), cast to the type the Parse declared when it is a built-in
// one; binary-format values of the common types are decoded first. Sans-io.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "proxy/protocol/postgres/messages.h"

namespace shardgate::pg {

// type_oid: the Parse's declared type, 0 when the server infers it.
Result<std::string> param_literal(const BindParam& param, std::uint32_t type_oid);

// The declared type OIDs of a Parse's raw parameter-type list (int16 count,
// int32 each); nullopt when malformed.
std::optional<std::vector<std::uint32_t>> parse_param_types(std::string_view raw);

}  // namespace shardgate::pg
