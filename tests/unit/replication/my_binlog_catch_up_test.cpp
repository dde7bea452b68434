#include "replication/my_binlog_catch_up.h"

#include <gtest/gtest.h>

namespace shardgate::replication {
namespace {

// mariadb-binlog 10.11's output for a DDL and a row transaction (abridged:
// the base64 of the format description is cut short).
constexpr const char* kOutput =
    "/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;\n"
    "DELIMITER /*!*/;\n"
    "# at 325\n"
    "#261125  9:40:26 server id 100  end_log_pos 367 CRC32 0xa58e8c78 \tGTID 0-100-7 ddl\n"
    "/*M!100101 SET @@session.skip_parallel_replication=0*//*!*/;\n"
    "/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;\n"
    "/*M!100001 SET @@session.server_id=100*//*!*/;\n"
    "/*M!100001 SET @@session.gtid_seq_no=7*//*!*/;\n"
    "use `app`/*!*/;\n"
    "CREATE TABLE t (id INT PRIMARY KEY)\n"
    "/*!*/;\n"
    "#261125  9:40:26 server id 100  end_log_pos 549 CRC32 0xc4039bd1 \tGTID 0-100-8 trans\n"
    "/*M!100001 SET @@session.gtid_seq_no=8*//*!*/;\n"
    "START TRANSACTION\n"
    "/*!*/;\n"
    "#Q> INSERT INTO t VALUES (1) -- SET @@session.gtid_seq_no=1\n"
    "BINLOG '\n"
    "Cq0GaxNkAAAALgAAAIgCAAAAABIAAAAAAAEAA2FwcAABdAACAw8CUAAC0QZkYQ==\n"
    "'/*!*/;\n"
    "COMMIT/*!*/;\n"
    "DELIMITER ;\n";

TEST(BinlogScript, DropsTheOldGtidsAndKeepsWhereEachTransactionBegins) {
  const BinlogScript s = binlog_script(kOutput);
  EXPECT_EQ(s.text.find("gtid_seq_no=7"), std::string::npos);
  EXPECT_EQ(s.text.find("@@session.server_id=100"), std::string::npos);
  EXPECT_EQ(s.text.find("gtid_domain_id=0"), std::string::npos);
  // Everything else stays, the annotated query's text included.
  EXPECT_NE(s.text.find("skip_parallel_replication"), std::string::npos);
  EXPECT_NE(s.text.find("#Q> INSERT INTO t VALUES (1) -- SET @@session.gtid_seq_no=1"),
            std::string::npos);
  EXPECT_NE(s.text.find("CREATE TABLE t"), std::string::npos);
  ASSERT_EQ(s.starts.size(), 2u);
  EXPECT_EQ(s.starts[0], std::make_pair(std::size_t{4}, std::uint64_t{7}));
  EXPECT_EQ(s.starts[1], std::make_pair(std::size_t{9}, std::uint64_t{8}));
}

TEST(BinlogScript, NamesTheTransactionTheClientStoppedIn) {
  const BinlogScript s = binlog_script(kOutput);
  EXPECT_EQ(failed_transaction(s, "ERROR 1050 (42S01) at line 7: Table 't' already exists\n"),
            std::optional<std::uint64_t>(7));
  EXPECT_EQ(failed_transaction(
                s,
                "--------------\nBINLOG '...'\n--------------\n\nERROR 1062 (23000) at line "
                "13: Duplicate entry '1' for key 'PRIMARY'\n"),
            std::optional<std::uint64_t>(8));
  // Before the first transaction, or no line named: none.
  EXPECT_EQ(failed_transaction(s, "ERROR 1227 (42000) at line 1: Access denied"), std::nullopt);
  EXPECT_EQ(failed_transaction(s, "ERROR 2002 (HY000): Can't connect"), std::nullopt);
}

TEST(BinlogScript, SeqRunsLeaveOutWhatTheJournalReplayed) {
  using Runs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  EXPECT_EQ(seq_runs(10, 15, {}), (Runs{{11, 15}}));
  EXPECT_EQ(seq_runs(10, 15, {11, 13, 14}), (Runs{{12, 12}, {15, 15}}));
  EXPECT_EQ(seq_runs(10, 12, {11, 12}), Runs{});
  EXPECT_EQ(seq_runs(10, 10, {}), Runs{});
}

}  // namespace
}  // namespace shardgate::replication
