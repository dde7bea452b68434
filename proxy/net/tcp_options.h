// Options every TCP connection of the proxy gets, to clients and to servers.
// A peer cut off by a network partition sends no reset: without them a
// connection waiting on it would hang for as long as TCP retransmits
// (about 15 minutes) or, idle, forever.
#pragma once

namespace shardgate::net {

// Keepalive probes after 10 s of silence, every 2 s, 3 unanswered ones end
// the connection: a peer gone quiet is found within ~16 s, while a peer
// that is merely slow (a long query) answers the probes from its kernel.
inline constexpr int kKeepaliveIdleSeconds = 10;
inline constexpr int kKeepaliveIntervalSeconds = 2;
inline constexpr int kKeepaliveProbes = 3;
// Servers also get TCP_USER_TIMEOUT: bytes sent to one that acknowledges
// nothing for 30 s end the connection (keepalive does not run while data
// is unacknowledged). Not for clients: Linux also applies it to a peer that
// keeps its receive window closed, as a client slowly reading a large
// result legitimately does.
inline constexpr int kServerUserTimeoutMs = 30000;

// TCP_NODELAY and keepalive on a connected TCP socket; `server` adds the
// user timeout. Failures are ignored: the connection works without them.
void tune_tcp(int fd, bool server);

}  // namespace shardgate::net
