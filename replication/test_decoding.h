// PostgreSQL's test_decoding output plugin (contrib, in Debian's
// postgresql-15): one text line per row change, read back into the
// statement that makes the same change on another server. It is how the
// proxy applies, on a new primary, transactions only the old primary had
// (replication/pg_old_primary.h): logical decoding is the one way to read
// a PostgreSQL WAL as rows, and test_decoding's text needs no client
// library of its own, unlike pgoutput's binary messages.
//
// A line looks like
//   table public.t: INSERT: id[bigint]:2 name[character varying]:'it''s'
//   table public.t: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 ...
//   table public.t: DELETE: id[bigint]:2
//   table public.t: TRUNCATE: restart_seqs cascade
// Names come quoted where SQL needs it, values as SQL literals (strings
// quoted, numbers and booleans bare), `null`, or `unchanged-toast-datum`
// for a large value an UPDATE did not touch.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace shardgate::replication {

struct DecodedColumn {
  std::string name;                    // as SQL writes it (quoted where needed)
  std::string type;                    // format_type's name, usable in a cast
  std::optional<std::string> literal;  // none: NULL
  bool unchanged_toast = false;        // an UPDATE left this large value alone
};

struct DecodedChange {
  enum class Kind { kInsert, kUpdate, kDelete, kTruncate };
  Kind kind = Kind::kInsert;
  std::string table;                               // schema-qualified, as SQL writes it
  std::vector<DecodedColumn> old_key;              // DELETE: the key; UPDATE: when the key changed
  std::vector<DecodedColumn> row;                  // INSERT and UPDATE: the new row
  bool cascade = false, restart_identity = false;  // TRUNCATE
};

// The change on a `table ...` line; none for BEGIN, COMMIT and messages.
Result<std::optional<DecodedChange>> parse_test_decoding(std::string_view line);

// The statement that makes `change`. `primary_key` names the table's key
// columns (as SQL writes them), for an UPDATE that kept its key: then the
// line holds only the new row.
Result<std::string> change_sql(const DecodedChange& change,
                               const std::vector<std::string>& primary_key);

}  // namespace shardgate::replication
