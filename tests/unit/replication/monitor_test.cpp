// The engine-neutral Monitor, driven by fake probes over pipes: a hung backend
// must cost the round nothing but its own probe, stop() must not wait for a
// hung round, and a probe that fails on a kept connection reconnects once.
#include "replication/monitor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

namespace shardgate::replication {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class Mode {
  Answer,            // answers every probe
  Hang,              // connects, then never answers
  DropKept,          // a connection kept from an earlier round fails its probe
  DropKeptAndFresh,  // every probe fails
  SlowConnect,       // a connect takes 60 ms, then every probe is answered at once
};

// The "server" answers by making the pipe readable; advance() reads the answer.
class FakeProbe final : public ProbeConnection {
 public:
  FakeProbe(Mode mode, std::atomic<int>& connects) : mode_(mode), connects_(connects) {
    if (pipe(fds_) != 0) fds_[0] = fds_[1] = -1;
  }
  ~FakeProbe() override {
    if (slow_.joinable()) slow_.join();
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

  pollfd wait_spec() const override { return pollfd{fds_[0], POLLIN, 0}; }

  void advance(short revents) override {
    if (connecting_) {
      char byte = 0;
      if (read(fds_[0], &byte, 1) != 1) return fail("read failed");
      connecting_ = false;
      connected_ = true;
      just_connected_ = true;
      return start_probe();
    }
    char byte = 0;
    if (!(revents & POLLIN) || read(fds_[0], &byte, 1) != 1) return fail("read failed");
    ProbeOutcome o;
    o.role = ObservedRole::Primary;
    o.lsn = ++answers_;
    succeed(o);
  }

  void close() override {
    connected_ = false;
    connecting_ = false;
  }

 protected:
  bool idle() const override { return connected_; }
  bool connecting() const override { return connecting_; }

  void start_connect() override {
    ++connects_;
    if (mode_ == Mode::SlowConnect) {
      // The "server" accepts 60 ms later, from another thread.
      connecting_ = true;
      if (slow_.joinable()) slow_.join();
      slow_ = std::thread([fd = fds_[1]] {
        std::this_thread::sleep_for(milliseconds(60));
        [[maybe_unused]] auto n = write(fd, "c", 1);
      });
      return;
    }
    connected_ = true;
    just_connected_ = true;
    start_probe();
  }

  void start_probe() override {
    const bool kept = !just_connected_;
    just_connected_ = false;
    if (mode_ == Mode::DropKeptAndFresh || (mode_ == Mode::DropKept && kept)) {
      return fail(kept ? "kept connection lost" : "fresh connection lost");
    }
    if (mode_ != Mode::Hang) [[maybe_unused]]
      auto n = write(fds_[1], "x", 1);
  }

 private:
  Mode mode_;
  std::atomic<int>& connects_;
  int fds_[2] = {-1, -1};
  bool connected_ = false;
  bool connecting_ = false;
  bool just_connected_ = false;
  std::thread slow_;
  uint64_t answers_ = 0;
};

struct Fakes {
  std::map<std::string, Mode> modes;
  std::map<std::string, std::atomic<int>> connects;
  ProbeFactory factory() {
    return [this](const ProbeTarget& t, const MonitorOptions&) {
      return std::make_unique<FakeProbe>(modes.at(t.name), connects[t.name]);
    };
  }
};

MonitorOptions options(milliseconds interval, milliseconds timeout) {
  MonitorOptions o;
  o.interval = interval;
  o.connect_timeout = timeout;
  o.failures_before_down = 1;
  return o;
}

TEST(Monitor, HungBackendOnlyCostsItsOwnProbe) {
  Fakes fakes;
  fakes.modes = {{"fast", Mode::Answer}, {"hung", Mode::Hang}};
  Monitor m({{"fast", "h", 1, "", 0, true}, {"hung", "h", 2, "", 0, false}},
            options(milliseconds(200), milliseconds(60)), fakes.factory());
  m.start();
  auto s = m.wait_for_round_after(Clock::now(), std::chrono::seconds(2));
  m.stop();
  ASSERT_GE(s->generation, 1u);
  const auto& fast = s->backends[0];
  const auto& hung = s->backends[1];
  EXPECT_TRUE(fast.up);
  EXPECT_EQ(fast.role, ObservedRole::Primary);
  // The answer came at once, not after the hung probe's deadline.
  EXPECT_LT(fast.last_success - s->round_started, milliseconds(50));
  EXPECT_FALSE(hung.up);
  EXPECT_EQ(hung.last_error, "timed out after 60 ms waiting for the probe result");
}

TEST(Monitor, StopDoesNotWaitForAHungRound) {
  Fakes fakes;
  fakes.modes = {{"hung", Mode::Hang}};
  Monitor m({{"hung", "h", 1, "", 0, true}}, options(milliseconds(10000), milliseconds(10000)),
            fakes.factory());
  m.start();
  std::this_thread::sleep_for(milliseconds(50));
  const auto before = Clock::now();
  m.stop();
  EXPECT_LT(Clock::now() - before, milliseconds(1000));
  EXPECT_EQ(m.snapshot()->generation, 0u);  // the interrupted round is not published
}

TEST(Monitor, KeepsConnectionsAndReconnectsOnceWhenAKeptOneFails) {
  Fakes fakes;
  fakes.modes = {
      {"steady", Mode::Answer}, {"flaky", Mode::DropKept}, {"dead", Mode::DropKeptAndFresh}};
  Monitor m({{"steady", "h", 1, "", 0, true},
             {"flaky", "h", 2, "", 0, false},
             {"dead", "h", 3, "", 0, false}},
            options(milliseconds(5), milliseconds(1000)), fakes.factory());
  // Stopping from the listener ends the thread before another round begins,
  // so the connection counts below belong to published rounds only.
  m.set_listener([&m](const std::shared_ptr<const HealthSnapshot>& snap) {
    if (snap->generation == 3) m.stop();
  });
  m.start();
  m.wait_for_round_after(Clock::now() + std::chrono::hours(1), std::chrono::seconds(2));
  m.stop();
  auto s = m.snapshot();
  ASSERT_EQ(s->generation, 3u);
  EXPECT_EQ(fakes.connects["steady"].load(), 1);  // one connection for every round
  EXPECT_TRUE(s->backends[1].up);                 // the kept connection's failure was retried
  EXPECT_EQ(fakes.connects["flaky"].load(), static_cast<int>(s->generation));
  EXPECT_FALSE(s->backends[2].up);  // a fresh connection's failure counts
  EXPECT_EQ(s->backends[2].last_error, "fresh connection lost");
  EXPECT_EQ(fakes.connects["dead"].load(), static_cast<int>(s->generation));
}

// An overloaded server that takes longer than a round to accept: the connect
// is waited on across rounds (each of which counts a failure) instead of
// being closed at every round's end and started over, which would never let
// it finish and would add a connection attempt to its load every round.
TEST(Monitor, SlowConnectIsKeptAcrossRoundsUntilTheConnectTimeout) {
  Fakes fakes;
  fakes.modes = {{"slow", Mode::SlowConnect}};
  Monitor m({{"slow", "h", 1, "", 0, true}}, options(milliseconds(20), milliseconds(1000)),
            fakes.factory());
  std::vector<std::string> errors;
  std::atomic<bool> answered = false;
  m.set_listener([&](const std::shared_ptr<const HealthSnapshot>& snap) {
    if (snap->backends[0].consecutive_failures == 0 && snap->generation > 0) {
      answered = true;
      m.stop();
    } else {
      errors.push_back(snap->backends[0].last_error);
    }
  });
  m.start();
  m.wait_for_round_after(Clock::now() + std::chrono::hours(1), std::chrono::seconds(2));
  m.stop();
  EXPECT_TRUE(answered.load());
  EXPECT_EQ(fakes.connects["slow"].load(), 1) << "the slow connect was started over";
  ASSERT_FALSE(errors.empty()) << "a 60 ms connect finished inside a 20 ms round";
  EXPECT_EQ(errors.front(), "no answer within 20 ms (connecting, waiting up to 1000 ms)");
}

}  // namespace
}  // namespace shardgate::replication
