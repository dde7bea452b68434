#include "tools/shardctl/sandbox.h"

#include <map>
#include <memory>

#include "tools/shardctl/sandbox_common.h"
#include "tools/shardctl/sandbox_mysql.h"
#include "tools/shardctl/sandbox_postgres.h"

namespace shardgate::shardctl {
namespace {

std::unique_ptr<SandboxEngine> make_engine(Engine engine) {
  return engine == Engine::kMysql ? make_mysql_engine() : make_postgres_engine();
}

}  // namespace

Result<std::string> sandbox_up(const SandboxOptions& options) {
  auto engine = make_engine(options.engine);
  return run_sandbox_up(options, *engine);
}

Result<void> sandbox_down(const DownOptions& options) {
  // Made when DIR first shows a member of that engine.
  std::map<Engine, std::unique_ptr<SandboxEngine>> engines;
  return run_sandbox_down(options, [&](Engine engine) -> SandboxEngine& {
    auto& slot = engines[engine];
    if (!slot) slot = make_engine(engine);
    return *slot;
  });
}

}  // namespace shardgate::shardctl
