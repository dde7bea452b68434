// shardctl's client of the proxy's admin HTTP API (proxy/admin).
#pragma once

#include <string>

#include "common/result.h"

namespace shardgate::shardctl {

struct AdminReply {
  int status = 0;
  std::string body;
};

// One request to the admin listener at "host:port"; any HTTP status is a reply.
Result<AdminReply> admin_request(const std::string& admin, bool post, const std::string& target,
                                 const std::string& body = "");
// A GET that must answer 200; its body.
Result<std::string> admin_get(const std::string& admin, const std::string& target);

}  // namespace shardgate::shardctl
