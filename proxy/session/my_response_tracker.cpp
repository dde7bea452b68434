#include "proxy/session/my_response_tracker.h"

namespace shardgate::session {

namespace {
// Answers are bounded by the server's max_allowed_packet (1 GiB at most).
constexpr std::uint32_t kMaxServerMessage = 1u << 30;
}  // namespace

void MyResponseTracker::reset(std::uint32_t capabilities) {
  capabilities_ = capabilities;
  pending_.clear();
  phase_ = Phase::Start;
  remaining_ = 0;
  error_seen_ = false;
  prepared_.reset();
  swallowed_error_.reset();
  gtid_.reset();
}

void MyResponseTracker::expect(MyAnswer answer, bool swallow) {
  if (!swallow) last_insert_id_ = 0;
  pending_.push_back(Pending{answer, swallow});
  if (pending_.size() == 1 && answer == MyAnswer::Fetch) phase_ = Phase::Rows;
}

MyFeed MyResponseTracker::feed(std::string_view buf) {
  MyFeed out;
  std::size_t pos = 0;
  std::string joined;
  while (!pending_.empty() && pos < buf.size()) {
    const std::string_view rest = buf.substr(pos);
    const auto m = mysql::decode_message(rest, kMaxServerMessage);
    if (m.status == mysql::DecodeStatus::NeedMore) break;
    if (m.status == mysql::DecodeStatus::Error) {
      out.protocol_error = true;
      out.error = m.error;
      break;
    }
    const bool swallow = pending_.front().swallow;
    // Only the first packet matters to the state machine; a row of 16 MB or
    // more is never an end packet, whatever its first bytes.
    const std::string_view first = rest.substr(
        mysql::kPacketHeaderSize, std::min<std::size_t>(m.payload_size, mysql::kMaxPacketPayload));
    if (!step(first, pos + mysql::kPacketHeaderSize, out)) {
      out.protocol_error = true;
      out.error = error_;
      break;
    }
    if (!swallow) {
      out.last_relayed_seq = m.last_seq;
      if (!out.relay.empty() && out.relay.back().offset + out.relay.back().length == pos)
        out.relay.back().length += m.size;
      else
        out.relay.push_back({pos, m.size});
    }
    pos += m.size;
    out.consumed = pos;
  }
  return out;
}

void MyResponseTracker::finish_answer() {
  pending_.pop_front();
  phase_ =
      !pending_.empty() && pending_.front().answer == MyAnswer::Fetch ? Phase::Rows : Phase::Start;
  remaining_ = 0;
}

// An OK or EOF that may end the answer: status flags say whether another
// result set follows (multi-statements, stored procedures).
bool MyResponseTracker::end_packet(std::string_view payload, bool result_set_end) {
  std::uint16_t status = 0;
  if (result_set_end) {
    auto end = mysql::parse_end_of_rows(payload, capabilities_);
    if (!end) {
      error_ = "malformed end of rows from server: " + end.error().message();
      return false;
    }
    status = end->status_flags;
  } else {
    auto ok = mysql::parse_ok(payload, capabilities_);
    if (!ok) {
      error_ = "malformed OK from server: " + ok.error().message();
      return false;
    }
    status = ok->status_flags;
    if (!pending_.front().swallow) {
      last_insert_id_ = ok->last_insert_id;
      if (auto gtid = mysql::produced_gtid(*ok)) gtid_ = std::string(*gtid);
    }
  }
  status_ = status;
  status_reported_ = true;
  if ((status & mysql::kServerMoreResultsExists) != 0) {
    phase_ = Phase::Start;
    return true;
  }
  finish_answer();
  return true;
}

void MyResponseTracker::after_prepare_columns() {
  if (prepare_columns_ > 0) {
    phase_ = Phase::PrepareColumns;
    remaining_ = prepare_columns_;
  } else {
    finish_answer();
  }
}

bool MyResponseTracker::step(std::string_view payload, std::size_t at, MyFeed& out) {
  const Pending& p = pending_.front();
  if (payload.empty()) {
    error_ = "empty packet from server";
    return false;
  }
  const auto first = static_cast<std::uint8_t>(payload[0]);
  switch (phase_) {
    case Phase::Start: {
      if (first == mysql::kErrHeader) {
        if (p.swallow) {
          auto err = mysql::parse_err(payload, capabilities_);
          swallowed_error_ = err ? std::string(err->message) : std::string("malformed error");
        }
        error_seen_ = true;
        finish_answer();
        return true;
      }
      if (p.answer == MyAnswer::Raw) {
        finish_answer();
        return true;
      }
      if (p.answer == MyAnswer::FieldList) {
        if (first == mysql::kEofHeader && payload.size() <= 9) return end_packet(payload, true);
        return true;  // a column definition
      }
      if (p.answer == MyAnswer::Prepare) {
        auto ok = mysql::parse_stmt_prepare_ok(payload);
        if (!ok) {
          error_ = "malformed PREPARE_OK from server";
          return false;
        }
        prepared_ = *ok;
        if (!p.swallow) out.prepare_ok_at = at;
        prepare_columns_ = ok->num_columns;
        if (ok->num_params > 0) {
          phase_ = Phase::PrepareParams;
          remaining_ = ok->num_params;
        } else {
          after_prepare_columns();
        }
        return true;
      }
      if (first == mysql::kOkHeader) return end_packet(payload, false);
      // COM_SET_OPTION answers with an EOF packet.
      if (p.answer == MyAnswer::Simple && first == mysql::kEofHeader && payload.size() <= 9)
        return end_packet(payload, true);
      if (p.answer == MyAnswer::Simple) {
        error_ = "unexpected answer from server";
        return false;
      }
      auto kind = mysql::classify_response(payload);
      if (!kind || *kind != mysql::ResponseKind::ResultSet) {
        error_ = "unexpected answer from server (LOCAL INFILE or EOF)";
        return false;
      }
      mysql::PayloadReader r(payload);
      auto count = r.lenenc_int();
      if (!count || *count == 0) {
        error_ = "malformed column count from server";
        return false;
      }
      phase_ = Phase::Columns;
      remaining_ = *count;
      return true;
    }
    case Phase::Columns:
      if (--remaining_ == 0) phase_ = Phase::ColumnsEnd;
      return true;
    case Phase::ColumnsEnd: {
      auto eof = mysql::parse_eof(payload, capabilities_);
      if (!eof) {
        error_ = "expected EOF after column definitions";
        return false;
      }
      status_ = eof->status_flags;
      status_reported_ = true;
      // A cursor holds the rows on the server: they come by COM_STMT_FETCH.
      if ((eof->status_flags & mysql::kServerStatusCursorExists) != 0) {
        finish_answer();
        return true;
      }
      phase_ = Phase::Rows;
      return true;
    }
    case Phase::Rows: {
      auto kind = mysql::classify_row(payload, capabilities_);
      if (!kind) {
        error_ = kind.error().message();
        return false;
      }
      if (*kind == mysql::RowKind::Row) return true;
      if (*kind == mysql::RowKind::Err) {
        error_seen_ = true;
        finish_answer();
        return true;
      }
      return end_packet(payload, true);
    }
    case Phase::PrepareParams:
      if (--remaining_ == 0) phase_ = Phase::PrepareParamsEnd;
      return true;
    case Phase::PrepareParamsEnd:
      after_prepare_columns();
      return true;
    case Phase::PrepareColumns:
      if (--remaining_ == 0) phase_ = Phase::PrepareColumnsEnd;
      return true;
    case Phase::PrepareColumnsEnd:
      finish_answer();
      return true;
  }
  return true;
}

}  // namespace shardgate::session
