// Accepts PostgreSQL or MySQL clients. Every worker binds the same address with
// SO_REUSEPORT, so the kernel spreads connections over the threads and each
// session, its socket and its coroutine frames stay on one thread for life.
#pragma once

#include <string>

#include "common/result.h"
#include "proxy/net/client_stream.h"
#include "proxy/proxy_context.h"

namespace shardgate::net {

// tls: null for a listener without a certificate; must outlive the listener.
Result<void> start_listener(ProxyContext& ctx, config::Listener::Protocol protocol,
                            const std::string& address, std::uint16_t port, const ServerTls* tls);

}  // namespace shardgate::net
