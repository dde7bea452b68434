#include "proxy/session/response_tracker.h"

#include "proxy/protocol/postgres/frame.h"
#include "proxy/protocol/postgres/messages.h"

namespace shardgate::session {
namespace {

bool terminates(Expect e, char type) {
  switch (e) {
    case Expect::Parse:
    case Expect::SwallowParse:
    case Expect::JournalParse:
      return type == '1';
    case Expect::Bind:
      return type == '2';
    case Expect::Describe:
      return type == 'T' || type == 'n';
    case Expect::Execute:
      return type == 'C' || type == 'I' || type == 's';
    case Expect::Close:
      return type == '3';
    case Expect::Sync:
    case Expect::Query:
    case Expect::SwallowQuery:
    case Expect::JournalTail:
    case Expect::JournalHead:
      return type == 'Z';
    case Expect::JournalExecute:
      return type == 'C';
    case Expect::SwallowBind:
      return type == '2';
    case Expect::SwallowClose:
      return type == '3';
    case Expect::EmitParseComplete:
    case Expect::EmitCloseComplete:
      return false;
  }
  return false;
}

bool answers_query(Expect e) {
  return e == Expect::Query || e == Expect::SwallowQuery || e == Expect::JournalTail ||
         e == Expect::JournalHead;
}

bool is_synthetic(Expect e) {
  return e == Expect::EmitParseComplete || e == Expect::EmitCloseComplete;
}

// Messages whose body the tracker reads; others may be streamed in pieces.
bool needs_whole(char type) {
  return type == 'Z' || type == 'C' || type == 'E' || type == '1';
}

}  // namespace

void ResponseTracker::reset() {
  queue_.clear();
  passing_ = 0;
  dropping_ = false;
  txn_status_ = 'I';
  error_seen_ = false;
  deferred_.clear();
  journal_turned_ = false;
  tail_commands_left_ = 1;
  journal_failed_ = false;
  journal_decided_ = false;
  journal_parsed_ = false;
  journal_row_.reset();
}

bool ResponseTracker::awaiting_ready() const {
  for (Expect e : queue_)
    if (e == Expect::Sync || answers_query(e)) return true;
  return false;
}

void ResponseTracker::emit_ready(std::vector<Segment>& out) {
  while (!queue_.empty() && is_synthetic(queue_.front())) {
    const char type = queue_.front() == Expect::EmitParseComplete ? '1' : '3';
    out.push_back(Segment{0, 0, pg::simple_message(type)});
    queue_.pop_front();
  }
}

void ResponseTracker::pop_head(std::vector<Segment>& out) {
  if (!queue_.empty()) queue_.pop_front();
  emit_ready(out);
}

// After an error in an extended-protocol batch the server skips everything up
// to Sync, so nothing is owed for those messages, real or synthetic.
void ResponseTracker::skip_to_sync() {
  while (!queue_.empty() && queue_.front() != Expect::Sync) queue_.pop_front();
}

bool ResponseTracker::capturing_journal_row() const {
  if (queue_.empty()) return false;
  const Expect head = queue_.front();
  return head == Expect::JournalExecute || (head == Expect::JournalTail && journal_turned_) ||
         (head == Expect::JournalHead && !journal_turned_);
}

void ResponseTracker::on_message(char type, std::string_view body, bool& drop, FeedResult& r,
                                 std::vector<Segment>& after) {
  const Expect head = queue_.empty() ? Expect::Query : queue_.front();
  const bool swallow_query = !queue_.empty() && head == Expect::SwallowQuery;
  // The journal SELECT's own messages: its RowDescription, DataRow and
  // CommandComplete (an error or a notice is the client's to see).
  const bool journal_answer =
      (type == 'T' || type == 'D' || type == 'C') && capturing_journal_row();
  drop = swallow_query || journal_answer ||
         (!queue_.empty() && head == Expect::SwallowParse && type == '1') ||
         (head == Expect::JournalParse && type == '1') ||
         (head == Expect::SwallowBind && type == '2') ||
         (head == Expect::SwallowClose && type == '3');
  if (journal_answer && type == 'D') journal_row_ = std::make_unique<std::string>(body);
  if (head == Expect::JournalParse && type == '1') journal_parsed_ = true;
  if (type == 'E') {
    if (!swallow_query) error_seen_ = true;
    if (journal_row_ && !journal_decided_) journal_failed_ = true;
    if (!queue_.empty() && !answers_query(head)) skip_to_sync();
    return;
  }
  if (type == 'C' && !drop) last_tag_.assign(body.substr(0, body.find('\0')));
  if (type == 'C' && head == Expect::JournalHead) journal_turned_ = true;
  if (type == 'C' && head == Expect::JournalTail && !journal_turned_ && --tail_commands_left_ == 0)
    journal_turned_ = true;
  if (type == 'G') r.copy_in = true;
  if (queue_.empty() || !terminates(head, type)) return;
  if (type == 'Z' && body.size() == 1) {
    if (!swallow_query) {
      txn_status_ = body[0];
      ++ready_count_;
    }
    // Only the journal's own query ends its count: a query answered before
    // it (a server's settings brought in line, swallowed) must not reset
    // the count of the text's statements expect_journal_tail set.
    if (head == Expect::JournalTail || head == Expect::JournalHead) {
      journal_turned_ = false;
      tail_commands_left_ = 1;
    }
    if (journal_row_ && !journal_decided_) {
      journal_decided_ = !journal_failed_ && body[0] == 'I';
      if (!journal_decided_) journal_row_.reset();
      journal_failed_ = false;
    }
  }
  pop_head(after);
}

FeedResult ResponseTracker::feed(std::string_view bytes) {
  FeedResult r;
  std::size_t pos = 0;
  auto relay = [&](std::size_t offset, std::size_t length) {
    if (length == 0) return;
    if (!r.out.empty() && r.out.back().synthetic.empty() &&
        r.out.back().offset + r.out.back().length == offset) {
      r.out.back().length += length;  // keep contiguous bytes in one segment
    } else {
      r.out.push_back(Segment{offset, length, {}});
    }
  };
  while (pos < bytes.size()) {
    if (passing_ > 0) {
      const std::size_t n = std::min(passing_, bytes.size() - pos);
      if (!dropping_) relay(pos, n);
      pos += n;
      passing_ -= n;
      if (passing_ == 0) {
        for (auto& d : deferred_) r.out.push_back(std::move(d));
        deferred_.clear();
      }
      continue;
    }
    if (bytes.size() - pos < 5) break;
    const char type = bytes[pos];
    const std::uint32_t len = pg::read_u32(bytes.data() + pos + 1);
    if (len < 4) {
      r.protocol_error = true;
      break;
    }
    const std::size_t total = std::size_t{len} + 1;
    const bool whole = bytes.size() - pos >= total;
    if (!whole && (needs_whole(type) || (type == 'D' && capturing_journal_row()))) break;
    bool drop = false;
    std::vector<Segment> after;  // synthetic answers that follow this message
    on_message(type, whole ? bytes.substr(pos + 5, len - 4) : std::string_view{}, drop, r, after);
    const std::size_t available = std::min(total, bytes.size() - pos);
    if (!drop) relay(pos, available);
    passing_ = total - available;
    // Synthetic answers go after the whole message, never inside it.
    for (auto& s : after) (passing_ > 0 ? deferred_ : r.out).push_back(std::move(s));
    dropping_ = drop;
    pos += available;
    if (r.copy_in) break;
  }
  r.consumed = pos;
  return r;
}

}  // namespace shardgate::session
