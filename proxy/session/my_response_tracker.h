// Follows a MySQL server's answers to the commands the proxy sent it, packet
// by packet and sans-io, so that the session knows what to relay to the
// client unchanged, what to swallow (answers to commands the proxy added:
// SET replays, COM_INIT_DB, prepares), when an answer is complete (the server
// can go back to the pool) and the status flags it ended with (transaction
// open or not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/mysql/messages.h"

namespace shardgate::session {

enum class MyAnswer {
  Query,      // COM_QUERY, COM_STMT_EXECUTE: OK | ERR | result sets, possibly several
  Prepare,    // COM_STMT_PREPARE: ERR | PREPARE_OK, parameter and column definitions
  Simple,     // COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, COM_STMT_RESET ...: OK | ERR
  FieldList,  // COM_FIELD_LIST: column definitions up to EOF, or ERR
  Raw,        // COM_STATISTICS: one packet of text
  Fetch,      // COM_STMT_FETCH: rows of an open cursor up to EOF, or ERR
};

struct MyFeed {
  struct Segment {
    std::size_t offset = 0;
    std::size_t length = 0;
  };
  std::vector<Segment> relay;  // bytes of the buffer to write to the client, in order
  std::size_t consumed = 0;    // bytes of the buffer dealt with (relayed or swallowed)
  // Where the payload of a relayed PREPARE_OK starts in the buffer: the
  // session rewrites the statement id there to the one it gave the client.
  std::optional<std::size_t> prepare_ok_at;
  // Sequence id of the last relayed packet: the client's next one follows it.
  std::optional<std::uint8_t> last_relayed_seq;
  bool protocol_error = false;
  std::string error;
};

class MyResponseTracker {
 public:
  // capabilities: those of the server connection (they decide packet forms).
  void reset(std::uint32_t capabilities);
  // The next answer the server owes; `swallow`: the client never sees it.
  void expect(MyAnswer answer, bool swallow);
  // Looks at whole messages at the head of buf; stops at an incomplete one.
  MyFeed feed(std::string_view buf);

  bool idle() const { return pending_.empty(); }
  bool in_transaction() const { return (status_ & mysql::kServerStatusInTrans) != 0; }
  std::uint16_t status_flags() const { return status_; }
  // Whether an answer since the last call carried status flags (a
  // COM_STMT_PREPARE answer, for one, carries none).
  bool take_status_reported() { return std::exchange(status_reported_, false); }
  // For a connection the proxy drove itself (a transaction leg it opened).
  void assume_status(std::uint16_t flags) { status_ = flags; }
  bool error_seen() const { return error_seen_; }
  void clear_error() { error_seen_ = false; }
  // The last relayed OK packet's last_insert_id (0 when none).
  std::uint64_t last_insert_id() const { return last_insert_id_; }
  // The GTID a relayed OK since the last call reported for a commit
  // (produced_gtid): the write journal keeps the write under it before the
  // client sees the OK.
  std::optional<std::string> take_gtid() { return std::exchange(gtid_, {}); }
  // A server-side cursor was opened: rows come by COM_STMT_FETCH later.
  bool cursor_open() const { return (status_ & mysql::kServerStatusCursorExists) != 0; }
  // The PREPARE_OK of the last COM_STMT_PREPARE; a swallowed one's error.
  std::optional<mysql::StmtPrepareOk> take_prepared() { return std::exchange(prepared_, {}); }
  std::optional<std::string> take_swallowed_error() { return std::exchange(swallowed_error_, {}); }

 private:
  enum class Phase {
    Start,          // the first packet of an answer (or of the next result set)
    Columns,        // column definitions of a result set
    ColumnsEnd,     // the EOF after them
    Rows,           // rows up to EOF or ERR
    PrepareParams,  // parameter definitions of a PREPARE_OK
    PrepareParamsEnd,
    PrepareColumns,
    PrepareColumnsEnd,
  };
  struct Pending {
    MyAnswer answer;
    bool swallow;
  };

  // Handles one message; false on a protocol error (error_ set).
  bool step(std::string_view payload, std::size_t at, MyFeed& out);
  void finish_answer();
  bool end_packet(std::string_view payload, bool result_set_end);
  void after_prepare_columns();

  std::uint32_t capabilities_ = 0;
  std::deque<Pending> pending_;
  Phase phase_ = Phase::Start;
  std::uint64_t remaining_ = 0;  // definitions left in this phase
  std::uint16_t prepare_columns_ = 0;
  std::uint16_t status_ = mysql::kServerStatusAutocommit;
  bool status_reported_ = false;
  std::uint64_t last_insert_id_ = 0;
  std::optional<std::string> gtid_;
  bool error_seen_ = false;
  std::optional<mysql::StmtPrepareOk> prepared_;
  std::optional<std::string> swallowed_error_;
  std::string error_;
};

}  // namespace shardgate::session
