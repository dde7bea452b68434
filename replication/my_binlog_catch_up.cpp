#include "replication/my_binlog_catch_up.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "common/process.h"

namespace shardgate::replication {
namespace {

namespace fs = std::filesystem;

// mariadb-binlog prints these before each transaction to give it the GTID
// it had, e.g. "/*M!100001 SET @@session.gtid_seq_no=3*//*!*/;".
const std::regex& old_gtid_line() {
  static const std::regex re(
      R"(^/\*M?!100001 SET @@session\.(gtid_seq_no|server_id|gtid_domain_id)=[0-9]+\*/ ?/\*!\*/;$)");
  return re;
}

// The comment that opens a transaction: "#261125  9:40:26 server id 100
// end_log_pos 761 CRC32 0x8a474fe1 \tGTID 0-100-3 trans".
std::optional<std::uint64_t> gtid_comment_seq(const std::string& line) {
  if (line.empty() || line[0] != '#') return std::nullopt;
  const auto at = line.find("\tGTID ");
  if (at == std::string::npos) return std::nullopt;
  unsigned long domain = 0, server = 0;
  unsigned long long seq = 0;
  if (std::sscanf(line.c_str() + at + 6, "%lu-%lu-%llu", &domain, &server, &seq) != 3)
    return std::nullopt;
  return seq;
}

std::string gtid(unsigned long server_id, std::uint64_t seq) {
  return "0-" + std::to_string(server_id) + "-" + std::to_string(seq);
}

// Where a server is, in the command-line options both tools take.
std::vector<std::string> where(const ServerAddress& s, const std::string& user) {
  std::vector<std::string> args{"--user=" + user};
  if (!s.unix_socket.empty()) {
    args.push_back("--protocol=SOCKET");
    args.push_back("--socket=" + s.unix_socket);
  } else {
    args.push_back("--protocol=TCP");
    args.push_back("--host=" + s.host);
    args.push_back("--port=" + std::to_string(s.port));
  }
  return args;
}

std::string first_line_with(const std::string& output, std::string_view word) {
  std::stringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.find(word) != std::string::npos) return line;
  std::string all = output;
  while (!all.empty() && (all.back() == '\n' || all.back() == ' ')) all.pop_back();
  return all.empty() ? "no output" : all;
}

// A private directory for one catch-up's scripts, removed with it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "shardgate-binlog-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

constexpr std::chrono::seconds kToolTimeout{60};

class Applier {
 public:
  Applier(const BinlogSource& source, const ServerAddress& target, const FailoverLogin& login,
          const fs::path& scratch)
      : source_(source), target_(target), login_(login), scratch_(scratch) {}

  // Applies (after, through] on the target; counts into `out`.
  void run(std::uint64_t after, std::uint64_t through, OldPrimaryCatchUp& out) {
    while (after < through) {
      auto script = read(after, through);
      if (!script) {
        out.failures.push_back(range(after + 1, through) + ": " + script.error().message());
        return;
      }
      if (script->starts.empty()) {
        out.failures.push_back(range(after + 1, through) + ": " + source_.server.name +
                               "'s binlog does not hold them any more");
        return;
      }
      auto applied = apply(*script);
      if (!applied) {
        out.failures.push_back(range(after + 1, through) + ": " + applied.error().message());
        return;
      }
      if (!applied->failed) {
        out.applied += script->starts.size();
        return;
      }
      const std::uint64_t failed = *applied->failed;
      for (const auto& [line, seq] : script->starts) out.applied += seq < failed ? 1 : 0;
      out.failures.push_back(gtid(source_.server_id, failed) + ": " + applied->message);
      after = failed;
    }
  }

 private:
  struct Applied {
    std::optional<std::uint64_t> failed;  // the transaction the client stopped in
    std::string message;
  };

  std::string range(std::uint64_t first, std::uint64_t last) const {
    return first == last ? gtid(source_.server_id, first)
                         : gtid(source_.server_id, first) + ".." + std::to_string(last);
  }

  Result<BinlogScript> read(std::uint64_t after, std::uint64_t through) {
    const fs::path out = scratch_ / ("read-" + std::to_string(++files_) + ".sql");
    std::vector<std::string> argv{"mariadb-binlog", "--read-from-remote-server", "--to-last-log",
                                  "--result-file=" + out.string()};
    for (auto& a : where(source_.server, login_.replication_user)) argv.push_back(std::move(a));
    // Past `after`, which must be a GTID of its binlog; from the first file
    // when it wrote nothing before.
    if (after > 0) argv.push_back("--start-position=" + gtid(source_.server_id, after));
    argv.push_back("--stop-position=" + gtid(source_.server_id, through));
    argv.push_back(source_.first_log);
    RunOptions options;
    options.timeout = kToolTimeout;
    options.env = {"MYSQL_PWD=" + login_.replication_password};
    auto r = run_process(argv, options);
    if (!r) return make_error(r.error().message() + " (mariadb-binlog comes with mariadb-client)");
    if (r->exit_code != 0 || r->output.find("ERROR") != std::string::npos)
      return make_error("mariadb-binlog: " + first_line_with(r->output, "ERROR"));
    std::ifstream in(out, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return binlog_script(text);
  }

  Result<Applied> apply(const BinlogScript& script) {
    const fs::path in = scratch_ / ("apply-" + std::to_string(++files_) + ".sql");
    {
      std::ofstream f(in, std::ios::binary);
      f << script.text;
      if (!f) return make_error("cannot write " + in.string());
    }
    std::vector<std::string> argv{"mariadb", "--binary-mode", "--batch"};
    for (auto& a : where(target_, login_.user)) argv.push_back(std::move(a));
    RunOptions options;
    options.timeout = kToolTimeout;
    options.env = {"MYSQL_PWD=" + login_.password};
    options.stdin_file = in;
    auto r = run_process(argv, options);
    if (!r) return make_error(r.error().message() + " (mariadb comes with mariadb-client)");
    if (r->exit_code == 0) return Applied{};
    const std::string message = first_line_with(r->output, "ERROR");
    auto failed = failed_transaction(script, r->output);
    if (!failed) return make_error("mariadb: " + message);
    return Applied{failed, message};
  }

  const BinlogSource& source_;
  const ServerAddress& target_;
  const FailoverLogin& login_;
  const fs::path& scratch_;
  int files_ = 0;
};

}  // namespace

BinlogScript binlog_script(std::string_view output) {
  BinlogScript script;
  std::stringstream lines{std::string(output)};
  std::size_t number = 0;
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_match(line, old_gtid_line())) continue;
    ++number;
    if (auto seq = gtid_comment_seq(line)) script.starts.emplace_back(number, *seq);
    script.text += line;
    script.text += '\n';
  }
  return script;
}

std::optional<std::uint64_t> failed_transaction(const BinlogScript& script,
                                                std::string_view client_output) {
  static const std::regex at_line(R"(^ERROR [0-9]+ \([0-9A-Z]+\) at line ([0-9]+))");
  std::stringstream lines{std::string(client_output)};
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, at_line)) continue;
    const std::size_t number = std::strtoull(m[1].str().c_str(), nullptr, 10);
    std::optional<std::uint64_t> in;
    for (const auto& [start, seq] : script.starts)
      if (start <= number) in = seq;
    return in;
  }
  return std::nullopt;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> seq_runs(std::uint64_t after,
                                                              std::uint64_t through,
                                                              const std::set<std::uint64_t>& skip) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
  for (std::uint64_t s = after + 1; s <= through; ++s) {
    if (skip.count(s)) continue;
    if (!runs.empty() && runs.back().second + 1 == s)
      runs.back().second = s;
    else
      runs.emplace_back(s, s);
  }
  return runs;
}

OldPrimaryCatchUp apply_old_binlog(const BinlogSource& source, const ServerAddress& target,
                                   const FailoverLogin& login, std::uint64_t took_over_at,
                                   std::uint64_t own_last,
                                   const std::set<std::uint64_t>& replayed) {
  OldPrimaryCatchUp out;
  if (own_last <= took_over_at) return out;
  out.errant = own_last - took_over_at;
  const auto runs = seq_runs(took_over_at, own_last, replayed);
  std::uint64_t pending = 0;
  for (const auto& [first, last] : runs) pending += last - first + 1;
  out.skipped = out.errant - pending;
  if (runs.empty()) return out;
  ScratchDir scratch;
  if (scratch.path().empty()) {
    out.failures.push_back("cannot create a directory in " + fs::temp_directory_path().string());
    return out;
  }
  Applier applier(source, target, login, scratch.path());
  for (const auto& [first, last] : runs) applier.run(first - 1, last, out);
  return out;
}

}  // namespace shardgate::replication
