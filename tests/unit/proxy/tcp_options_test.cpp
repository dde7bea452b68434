// The TCP options that bound how long a connection to a peer cut off by a
// network partition can hang (proxy/net/tcp_options.h), read back from a
// real loopback socket.
#include "proxy/net/tcp_options.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shardgate::net {
namespace {

int option(int fd, int level, int name) {
  int value = -1;
  socklen_t size = sizeof value;
  EXPECT_EQ(::getsockopt(fd, level, name, &value, &size), 0);
  return value;
}

TEST(TcpOptions, ServersGetKeepaliveAndAUserTimeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  tune_tcp(fd, true);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(option(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPIDLE), kKeepaliveIdleSeconds);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPINTVL), kKeepaliveIntervalSeconds);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPCNT), kKeepaliveProbes);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), kServerUserTimeoutMs);
  ::close(fd);
}

TEST(TcpOptions, ClientsGetKeepaliveButNoUserTimeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  tune_tcp(fd, false);
  EXPECT_EQ(option(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPIDLE), kKeepaliveIdleSeconds);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0)
      << "a client slowly reading a large result would be cut off";
  ::close(fd);
}

}  // namespace
}  // namespace shardgate::net
