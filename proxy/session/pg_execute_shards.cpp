// A PostgreSQL extended-protocol write that needs several shards (keys of
// several in an IN list or in the rows of a multi-row INSERT, a reference
// table, an allowed keyless write). The batch's bound values are written
// into the statement text as literals (pg::param_literal) and the text runs
// as the same simple query would (pg_fanout.cpp): split per shard, in the
// client's transaction or one the proxy commits with two-phase commit; the
// client hears the extended protocol's answers (ParseComplete, BindComplete,
// NoData or the rows, CommandComplete).
#include "proxy/protocol/postgres/param_literal.h"
#include "proxy/reshard/reshard_gate.h"
#include "proxy/session/pg_session.h"
#include "proxy/session/shard_choice.h"
#include "router/classify.h"
#include "router/inline_params.h"
#include "router/write_split.h"

namespace shardgate::session {

namespace {

// The batch's statement with its Bind's values written in.
Result<std::string> with_parameters_written(const std::string& query, const ScatterExtended& ext) {
  auto types = pg::parse_param_types(ext.param_types);
  if (!types) return make_error("malformed parameter types in Parse");
  std::vector<pg::BindParam> bound;
  if (!pg::parse_bind_params(ext.bind_rest, bound)) return make_error("malformed Bind message");
  std::vector<std::string> literals;
  for (std::size_t i = 0; i < bound.size(); ++i) {
    auto literal = pg::param_literal(bound[i], i < types->size() ? (*types)[i] : 0);
    if (!literal) return literal.error();
    literals.push_back(std::move(*literal));
  }
  return router::inline_parameters(query, router::Dialect::Postgres,
                                   router::default_lexer_mode(router::Dialect::Postgres), literals);
}

}  // namespace

asio::awaitable<Result<void>> PgSession::fanout_batch() {
  auto lone = co_await take_lone_execution();
  if (!lone) co_return lone.error();
  std::string text;
  if (lone->refusal.empty()) {
    auto written = with_parameters_written(lone->query, lone->ext);
    if (written)
      text = std::move(*written);
    else
      lone->refusal =
          "the write needs several shards, where it runs as text, and its parameters cannot be "
          "written into it: " +
          written.error().message();
  }
  if (lone->refusal.empty() && !pg::bind_results_all_text(lone->ext.bind_rest) &&
      router::has_returning(text, router::Dialect::Postgres))
    lone->refusal =
        "a write over several shards returns its RETURNING columns as text only; bind its result "
        "formats as text";
  if (!lone->refusal.empty()) co_return co_await refuse_round("0A000", lone->refusal, true);
  begin_lone_batch(*lone);

  const router::Statement stmt =
      router::analyze(text, router::Dialect::Postgres, ctx_.analyze_options);
  // Its keys were counted when the batch was routed with its parameters.
  router::HotKeyTap hot_keys = worker_.hot_key_tap();
  hot_keys.recorder = nullptr;
  std::optional<ShardChoice> routed;
  for (;;) {
    routed.emplace(*ctx_.topology, worker_.shard_plans(), hot_keys);
    routed->watch_moves(routing_.watch_slice(ctx_.reshard));
    routed->add(stmt, text, router::Dialect::Postgres, {});
    if (routing_.note_moved(ctx_.reshard, routed->moved())) break;
    co_await wait_out_cutover(ctx_.reshard);  // then routed by the topology it published
  }
  auto chosen = routed->result();
  if (!chosen) co_return co_await refuse_round("0A000", chosen.error().message(), true);
  if (const auto& plan = routed->several_writes()) {
    if (plan->outside_transaction) co_return co_await fanout_ddl(*plan, &lone->ext);
    co_return co_await fanout_write(*plan, &lone->ext);
  }
  // The topology moved since the batch was routed: one shard holds every
  // key now. The write runs there the same way.
  router::WritePlan one;
  one.writes.push_back({chosen->value_or(ctx_.topology->sharding.default_shard), text});
  co_return co_await fanout_write(one, &lone->ext);
}

}  // namespace shardgate::session
