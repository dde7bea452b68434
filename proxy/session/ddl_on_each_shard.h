// DDL that cannot be part of a transaction over several shards (MariaDB
// commits DDL at once and XA refuses it; PostgreSQL's CONCURRENTLY forms
// refuse a transaction block), whatever the protocol: each shard of the plan
// runs it at once on a connection of its own, and the caller answers from
// which shards applied it and which refused it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/session/server_attach.h"
#include "proxy/txn/two_phase.h"
#include "router/topology.h"
#include "router/write_split.h"

namespace shardgate::session {

struct DdlRun {
  std::string failure;                       // no shard ran it: a connection could not be opened
  std::vector<txn::LegAnswer> answers;       // one per plan write
  std::string applied, refused;              // shard names, comma-separated
  std::optional<std::size_t> first_refusal;  // index in answers
  std::string tag;                           // the first success's command tag (PostgreSQL)
};

// open(shard): a connection outside any transaction (awaitable<Result<Leg>>);
// run(legs, steps): the protocol's leg runner.
template <class Leg, class Open, class Run>
asio::awaitable<DdlRun> run_ddl_on_each_shard(Worker& worker, const router::WritePlan& plan,
                                              const router::Topology& topology, Open open,
                                              Run run) {
  DdlRun out;
  std::vector<Leg> legs;
  for (const auto& w : plan.writes) {
    auto leg = co_await open(w.shard);
    if (!leg) {
      out.failure = leg.error().message();
      break;
    }
    legs.push_back(std::move(*leg));
  }
  if (out.failure.empty()) {
    txn::Steps steps;
    for (std::size_t k = 0; k < plan.writes.size(); ++k)
      steps.emplace_back(k, std::vector<std::string>{plan.writes[k].sql});
    out.answers = co_await run(legs, std::move(steps));
  }
  for (auto& leg : legs) release_server(worker, leg.server, !leg.broken && !leg.dirty);
  for (std::size_t k = 0; k < out.answers.size(); ++k) {
    const txn::LegAnswer& a = out.answers[k];
    std::string& list = a.ok ? out.applied : out.refused;
    list += (list.empty() ? "" : ", ") + topology.shards[plan.writes[k].shard].name;
    if (!a.ok && !out.first_refusal) out.first_refusal = k;
    if (a.ok && out.tag.empty()) out.tag = a.tag;
  }
  co_return out;
}

}  // namespace shardgate::session
