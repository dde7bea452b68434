// Sans-io accounting of what a PostgreSQL server owes the client for the
// messages the proxy forwarded, so that the proxy can (a) relay a server's
// bytes unchanged while (b) dropping answers to messages the proxy injected
// (a replayed Parse, a session-settings SET) and (c) inserting answers the
// server never sees (ParseComplete for a statement already prepared there,
// CloseComplete for a statement closed only on the client's side).
//
// feed() walks server bytes message by message, consuming whole messages or
// the prefix of a large pass-through message (DataRow bodies are streamed, not
// buffered), and describes the bytes to write to the client as segments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardgate::session {

enum class Expect : std::uint8_t {
  Parse,              // ParseComplete '1'
  Bind,               // BindComplete '2'
  Describe,           // [ParameterDescription 't'] then RowDescription 'T' or NoData 'n'
  Execute,            // DataRow* then CommandComplete 'C' / EmptyQuery 'I' / PortalSuspended 's'
  Close,              // CloseComplete '3'
  Sync,               // ReadyForQuery 'Z'
  Query,              // everything up to ReadyForQuery 'Z' (simple query, FunctionCall)
  SwallowParse,       // ParseComplete of a Parse the proxy injected: not relayed
  SwallowQuery,       // everything up to 'Z' of a query the proxy injected: not relayed
  EmitParseComplete,  // send ParseComplete ourselves
  EmitCloseComplete,  // send CloseComplete ourselves
  // A simple query the proxy extended with its write-journal SELECT
  // (pg_journal.h): after it, as the last statement, or before it, as the
  // first. That SELECT's answer is not relayed; its row is kept
  // (take_journal_row). Otherwise like Query.
  JournalTail,
  JournalHead,
  // The Execute of the journal SELECT the proxy put before a batch's Sync;
  // and the answers to its Bind and Close, not relayed either.
  JournalExecute,
  JournalParse,  // ParseComplete of the journal's statement: not relayed, noted
  SwallowBind,
  SwallowClose,
};

struct Segment {
  std::size_t offset = 0;  // into the fed bytes, when synthetic is empty
  std::size_t length = 0;
  std::string synthetic;  // bytes the proxy made up
};

struct FeedResult {
  std::size_t consumed = 0;
  std::vector<Segment> out;     // what to write to the client, in order
  bool copy_in = false;         // server sent CopyInResponse: client data must flow now
  bool protocol_error = false;  // server bytes make no sense: drop the connection
};

class ResponseTracker {
 public:
  void expect(Expect e) { queue_.push_back(e); }
  // Expect::JournalTail after a text of `client_statements` statements:
  // their CommandCompletes are the client's, what follows is the journal's.
  void expect_journal_tail(std::size_t client_statements) {
    queue_.push_back(Expect::JournalTail);
    tail_commands_left_ = client_statements;
  }
  // Synthetic answers at the head of the queue (nothing from the server comes first).
  void emit_ready(std::vector<Segment>& out);
  FeedResult feed(std::string_view bytes);

  bool idle() const { return queue_.empty(); }
  // True while some expected answer is a ReadyForQuery (a Sync or a Query is pending).
  bool awaiting_ready() const;
  char transaction_status() const { return txn_status_; }
  // For a connection the proxy drove itself (a transaction leg it opened).
  void assume_transaction_status(char status) { txn_status_ = status; }
  bool error_seen() const { return error_seen_; }
  void clear_error() { error_seen_ = false; }
  std::size_t ready_count() const { return ready_count_; }
  // Tag of the last CommandComplete relayed ("SET", "COMMIT", "ROLLBACK" ...).
  const std::string& last_command_tag() const { return last_tag_; }
  // The DataRow body of the journal SELECT, once the ReadyForQuery ending
  // its round showed the commit went through: no error after the row, no
  // transaction left open. An error after that ReadyForQuery (a backend's
  // FATAL as it exits) does not undo a commit the client was told of.
  // The server confirmed it prepared the journal's statement (a Parse that
  // an earlier error made the server skip is never confirmed).
  bool take_journal_parsed() { return std::exchange(journal_parsed_, false); }
  std::unique_ptr<std::string> take_committed_journal_row() {
    if (!journal_decided_) return nullptr;
    journal_decided_ = false;
    return std::move(journal_row_);
  }
  void reset();

 private:
  void on_message(char type, std::string_view body, bool& drop, FeedResult& r,
                  std::vector<Segment>& after);
  void pop_head(std::vector<Segment>& out);
  void skip_to_sync();
  bool capturing_journal_row() const;

  // A FIFO kept as a vector and a head index: it allocates nothing until a
  // client first sends something (std::deque allocates at construction, and
  // an idle client should cost as little as possible).
  class Queue {
   public:
    bool empty() const { return head_ == items_.size(); }
    Expect front() const { return items_[head_]; }
    void push_back(Expect e) { items_.push_back(e); }
    void pop_front() {
      if (++head_ == items_.size()) clear();
    }
    void clear() {
      items_.clear();
      head_ = 0;
    }
    auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() const { return items_.end(); }

   private:
    std::vector<Expect> items_;
    std::size_t head_ = 0;
  };
  Queue queue_;
  std::size_t passing_ = 0;        // bytes of a pass-through message still to come
  bool dropping_ = false;          // ... and whether they are dropped
  std::vector<Segment> deferred_;  // synthetic answers due after that message
  char txn_status_ = 'I';
  bool error_seen_ = false;
  // JournalTail: the client's statement is complete, what follows is ours.
  // JournalHead: ours is complete, what follows is the client's.
  bool journal_turned_ = false;
  std::size_t tail_commands_left_ = 1;  // JournalTail: client CommandCompletes still to come
  bool journal_failed_ = false;         // an error came after the journal row
  bool journal_decided_ = false;        // ... and the round's ReadyForQuery said committed
  bool journal_parsed_ = false;
  std::unique_ptr<std::string> journal_row_;
  std::size_t ready_count_ = 0;
  std::string last_tag_;
};

}  // namespace shardgate::session
