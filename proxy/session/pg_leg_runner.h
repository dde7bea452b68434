// Sends statements to PostgreSQL connections of one client (the legs of a
// transaction over several shards, or connections that run DDL outside
// any transaction) and reads what each answered: all legs first, then the
// answers. The Runner of the two-phase coordinator (proxy/txn/two_phase.h)
// for PostgreSQL.
#pragma once

#include <string>
#include <vector>

#include "proxy/net/io.h"
#include "proxy/net/pg_io.h"
#include "proxy/protocol/postgres/messages.h"
#include "proxy/txn/two_phase.h"

namespace shardgate::session {

namespace asio = boost::asio;

template <class Legs>
asio::awaitable<std::vector<txn::LegAnswer>> run_on_pg_legs(Legs& legs, txn::Steps steps,
                                                            std::uint32_t max_size) {
  std::vector<txn::LegAnswer> answers(steps.size());
  for (std::size_t k = 0; k < steps.size(); ++k) {
    auto& leg = legs[steps[k].first];
    if (leg.broken) {
      answers[k].lost = true;
      answers[k].error = "the connection was lost";
      continue;
    }
    std::string out;
    for (const auto& sql : steps[k].second) out += pg::query_message(sql);
    auto w = co_await net::write_all(leg.server.conn->socket(), out);
    if (!w) {
      leg.broken = true;
      answers[k].lost = true;
      answers[k].error = "lost the connection (" + w.error().message() + ")";
    }
  }
  for (std::size_t k = 0; k < steps.size(); ++k) {
    txn::LegAnswer& a = answers[k];
    if (a.lost) continue;
    auto& leg = legs[steps[k].first];
    auto& conn = *leg.server.conn;
    a.ok = true;
    std::size_t pending = steps[k].second.size();
    while (pending > 0) {
      auto frame = co_await net::read_frame(conn.socket(), conn.buffer(), max_size);
      if (!frame) {
        leg.broken = true;
        a.ok = false;
        a.lost = true;
        a.error = "lost the connection (" + frame.error().message() + ")";
        break;
      }
      const pg::Frame& f = *frame;
      if (f.type == 'E') {
        const pg::ErrorFields fields = pg::parse_error_fields(f.body);
        if (fields.severity == "FATAL" || fields.severity == "PANIC") {
          // The server ends the connection (terminated, shutting down): the
          // leg is lost, and the client must not see a FATAL of its own.
          leg.broken = true;
          a = txn::lost_answer("lost the connection (" + fields.message + ")");
          conn.buffer().consume(f.size);
          break;
        }
        if (a.ok) {
          a.ok = false;
          a.raw_error.assign(f.body.data() - 5, f.size);
          a.error = fields.message;
        }
      } else if (f.type == 'C') {
        a.tag.assign(f.body.data(), f.body.empty() ? 0 : f.body.size() - 1);
      } else if (f.type == 'Z') {
        --pending;
      }
      conn.buffer().consume(f.size);
    }
  }
  co_return answers;
}

}  // namespace shardgate::session
