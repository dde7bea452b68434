// What every server connection has, whatever its protocol: the login it was
// opened with and the one state it is in. Pools and sessions see this much.
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

namespace shardgate::backend {

struct ServerLogin {
  std::string user;
  std::string password;
  std::string database;
  // Protocol options the connection is opened with (MySQL: the client
  // capability flags that change the format of answers, and the charset).
  std::uint32_t options = 0;
};

enum class ServerState {
  Connecting,  // startup and authentication in progress
  Idle,        // in a pool, no transaction open
  Active,      // leased to a client session
  Broken,      // must be closed, never reused
};

// The sockets of the server connections one pool opened, so that those to a
// backend that was just fenced can be cut at once (Pool::abort_all). A
// fenced primary cut off by a network partition never answers nor resets
// its connections: without this, a statement in flight there would wait
// for TCP to give up (many minutes), and after the partition heals its
// unsent bytes could still reach the old primary. One thread only.
class LiveSockets {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;

  // A connection's place in the set, left when the connection is destroyed.
  class Membership {
   public:
    Membership() = default;
    Membership(std::shared_ptr<LiveSockets> set, Socket* socket) : set_(std::move(set)) {
      at_ = set_->sockets_.insert(set_->sockets_.end(), socket);
    }
    Membership(const Membership&) = delete;
    Membership& operator=(const Membership&) = delete;
    Membership& operator=(Membership&& other) noexcept {
      leave();
      set_ = std::move(other.set_);
      at_ = other.at_;
      return *this;
    }
    ~Membership() { leave(); }

   private:
    void leave() {
      if (set_) set_->sockets_.erase(at_);
      set_.reset();
    }
    std::shared_ptr<LiveSockets> set_;
    std::list<Socket*>::iterator at_{};
  };

  // Resets every socket: operations pending on it end with an error at
  // once, and the kernel drops what it had not sent yet (SO_LINGER 0).
  void abort_all() {
    for (Socket* s : sockets_) {
      boost::system::error_code ec;
      s->set_option(boost::asio::socket_base::linger(true, 0), ec);
      s->close(ec);
    }
  }

 private:
  std::list<Socket*> sockets_;
};

}  // namespace shardgate::backend
