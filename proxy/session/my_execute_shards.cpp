// A MySQL prepared statement's execution that needs several shards: a read
// whose keys live on several (or that names none), a write with keys of
// several, a write to a reference table. The execution is written out as
// text, its bound values as literals, and runs as that COM_QUERY would:
// merged reads (my_scatter.cpp, rows converted to the binary format the
// client expects), writes split per shard under two-phase commit
// (my_fanout.cpp), DDL on every shard. Every rule of those paths applies,
// the refusals included.
#include "proxy/protocol/mysql/messages.h"
#include "proxy/session/my_execute_params.h"
#include "proxy/session/my_session.h"
#include "router/classify.h"
#include "router/inline_params.h"

namespace shardgate::session {

asio::awaitable<std::optional<Result<void>>> MySession::execute_across_shards(
    MyClientStatement& st, const mysql::StmtExecute& exec) {
  auto refuse = [this](const std::string& why) {
    bump(worker_.metrics().statements_refused_total);
    queue_error(mysql::kErNotSupportedYet, why);
  };
  if (exec.flags != 0) {
    st.long_data.clear();
    refuse(
        "the statement needs several shards, and a cursor cannot span them: execute it without "
        "a cursor (CURSOR_TYPE_NO_CURSOR)");
    co_return co_await flush_client();
  }
  // The server's NO_BACKSLASH_ESCAPES decides how a string literal is
  // written, and how the text around it lexes.
  const bool no_backslash = (tracker_.status_flags() & mysql::kServerStatusNoBackslashEscapes) != 0;
  auto literals = execute_literals(exec, st.param_types, st.num_params,
                                   long_data_values(st.long_data, st.num_params), no_backslash);
  Result<std::string> text =
      literals
          ? router::inline_parameters(st.query, router::Dialect::Mysql,
                                      router::LexerMode{!no_backslash, !no_backslash}, *literals)
          : Result<std::string>(literals.error());
  if (!text) {
    st.long_data.clear();
    refuse(
        "the statement needs several shards, where it runs as text, and its parameters "
        "cannot be written into it: " +
        text.error().message());
    co_return co_await flush_client();
  }
  const router::Statement stmt =
      router::analyze(*text, router::Dialect::Mysql, ctx_.analyze_options);
  auto answered = co_await shard_query(*text, stmt, true);
  // Answered here, the execution has used its long data; otherwise it runs
  // as prepared on the one shard it needs now, long data included.
  if (answered) st.long_data.clear();
  co_return answered;
}

}  // namespace shardgate::session
