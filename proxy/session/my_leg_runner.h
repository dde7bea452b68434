// Sends statements to the legs of a MySQL transaction over several shards
// and reads what each server answered (one OK or ERR per statement): the
// Runner of the two-phase coordinator (proxy/txn/two_phase.h) and of writes
// over several shards. The k-th statement of every leg is sent to all of
// them before their answers are read.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "proxy/net/io.h"
#include "proxy/net/my_io.h"
#include "proxy/protocol/mysql/messages.h"
#include "proxy/txn/two_phase.h"

namespace shardgate::session {

namespace asio = boost::asio;

template <class Legs>
asio::awaitable<std::vector<txn::LegAnswer>> run_on_my_legs(Legs& legs, txn::Steps steps,
                                                            std::uint32_t max_size) {
  std::vector<txn::LegAnswer> answers(steps.size());
  std::size_t rounds = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    rounds = std::max(rounds, steps[k].second.size());
    answers[k].ok = !legs[steps[k].first].broken;
    if (!answers[k].ok) {
      answers[k].lost = true;
      answers[k].error = "the connection was lost";
    }
  }
  for (std::size_t r = 0; r < rounds; ++r) {
    std::vector<bool> sent(steps.size(), false);
    for (std::size_t k = 0; k < steps.size(); ++k) {
      if (!answers[k].ok || r >= steps[k].second.size()) continue;
      auto& leg = legs[steps[k].first];
      std::string payload(1, static_cast<char>(mysql::kComQuery));
      payload += steps[k].second[r];
      std::string out;
      std::uint8_t seq = 0;
      mysql::append_packets(out, payload, seq);
      auto w = co_await net::write_all(leg.server.conn->socket(), out);
      if (!w) {
        leg.broken = true;
        answers[k] = txn::lost_answer("lost the connection (" + w.error().message() + ")");
        continue;
      }
      sent[k] = true;
    }
    for (std::size_t k = 0; k < steps.size(); ++k) {
      if (!sent[k]) continue;
      auto& leg = legs[steps[k].first];
      auto& conn = *leg.server.conn;
      auto message = co_await net::read_message(conn.socket(), conn.buffer(), max_size);
      if (!message) {
        leg.broken = true;
        answers[k] = txn::lost_answer("lost the connection (" + message.error().message() + ")");
        continue;
      }
      const std::string_view payload = conn.buffer().readable().substr(4, message->payload_size);
      const auto header = payload.empty() ? 0 : static_cast<std::uint8_t>(payload[0]);
      if (header == mysql::kOkHeader) {
        if (auto ok = mysql::parse_ok(payload, conn.capabilities())) {
          answers[k].affected_rows += ok->affected_rows;
          if (answers[k].insert_id == 0) answers[k].insert_id = ok->last_insert_id;
        }
      } else if (header == mysql::kErrHeader) {
        leg.dirty = true;  // its XA state after a failure is not worth sharing
        answers[k].ok = false;
        answers[k].raw_error.assign(payload);
        auto err = mysql::parse_err(payload, conn.capabilities());
        answers[k].error = err ? std::string(err->message) : "an error";
      } else {
        leg.broken = true;  // a result set, where none belongs: the stream is lost
        answers[k] = txn::lost_answer("an answer that is neither OK nor an error");
      }
      conn.buffer().consume(message->size);
    }
  }
  co_return answers;
}

}  // namespace shardgate::session
