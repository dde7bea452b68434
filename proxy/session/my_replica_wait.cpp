// MySQL read-your-writes with the commit's GTID: when the monitor knows no
// replica that has applied the client's last commit (it samples every 250
// ms), a replica is asked to wait for it, briefly (MASTER_GTID_WAIT), instead
// of sending the read to the primary. One round trip, only while the
// replicas are behind the client's own write.
#include <cstdio>

#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_session.h"

namespace shardgate::session {

namespace {

// A GTID list as the server reported it ("0-1-42" or "0-1-42,1-2-7"): digits,
// dashes and commas only, so that it can be quoted into the statement.
bool plain_gtid(std::string_view gtid) {
  return !gtid.empty() && gtid.find_first_not_of("0123456789-,") == std::string_view::npos;
}

}  // namespace

asio::awaitable<Result<bool>> MySession::wait_for_commit(Conn& conn, const std::string& gtid) {
  if (!plain_gtid(gtid)) co_return false;
  char timeout[32];
  std::snprintf(timeout, sizeof timeout, "%.3f", ctx_.config->routing().replica_wait_ms() / 1000.0);
  std::string payload(1, static_cast<char>(mysql::kComQuery));
  payload += "SELECT MASTER_GTID_WAIT('" + gtid + "', " + timeout + ")";
  std::string out;
  std::uint8_t seq = 0;
  mysql::append_packets(out, payload, seq);
  auto w = co_await net::write_all(conn.socket(), out);
  if (!w) co_return w.error();
  // One column, one row: 0 once applied, -1 when the wait timed out. An ERR
  // (a server that is no replica any more) ends it early: not reached.
  const bool eof_after_columns = (conn.capabilities() & mysql::kClientDeprecateEof) == 0;
  std::optional<std::string> value;
  for (int packet = 0;; ++packet) {
    auto m = co_await net::read_message(conn.socket(), conn.buffer(), max_message_size_);
    if (!m) co_return m.error();
    const std::string_view body = conn.buffer().readable().substr(4, m->payload_size);
    const auto header = body.empty() ? 0 : static_cast<std::uint8_t>(body[0]);
    const bool row = packet >= (eof_after_columns ? 3 : 2);
    bool done = header == mysql::kErrHeader || (row && header == mysql::kEofHeader);
    if (row && !done) {
      auto cells = mysql::parse_text_row(body, 1);
      if (cells && !cells->empty() && cells->front()) value = std::string(*cells->front());
    }
    conn.buffer().consume(m->size);
    if (done) break;
  }
  co_return value == "0";
}

}  // namespace shardgate::session
