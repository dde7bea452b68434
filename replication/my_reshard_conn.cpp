// MariaDB side of a resharding connection (Connector/C, text protocol).
#include <mysql.h>

#include <algorithm>

#include "replication/client_handles.h"
#include "replication/reshard_conn.h"

namespace shardgate::replication {

namespace {

class MyReshardConn final : public ReshardConn {
 public:
  MyReshardConn(MyConn conn, std::string name, std::string database)
      : conn_(std::move(conn)), name_(std::move(name)), database_(std::move(database)) {}

  Result<void> exec(const std::string& sql) override {
    if (mysql_real_query(conn_.get(), sql.data(), sql.size()) != 0) return failed(sql);
    // A statement that returns rows (none are sent here) would leave them unread.
    MyResult res(mysql_store_result(conn_.get()));
    affected_ = res ? 0 : mysql_affected_rows(conn_.get());
    return {};
  }

  Result<std::vector<Row>> query(const std::string& sql) override {
    if (mysql_real_query(conn_.get(), sql.data(), sql.size()) != 0) return failed(sql);
    MyResult res(mysql_store_result(conn_.get()));
    if (!res) return failed(sql);
    const unsigned cols = mysql_num_fields(res.get());
    std::vector<Row> rows;
    rows.reserve(mysql_num_rows(res.get()));
    while (MYSQL_ROW r = mysql_fetch_row(res.get())) {
      const unsigned long* lengths = mysql_fetch_lengths(res.get());
      Row row;
      row.reserve(cols);
      for (unsigned c = 0; c < cols; ++c) {
        if (r[c])
          row.emplace_back(std::string(r[c], lengths[c]));
        else
          row.emplace_back(std::nullopt);
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  std::uint64_t affected() const override { return affected_; }

  std::string ident(std::string_view name) const override {
    std::string out = "`";
    for (char c : name) {
      if (c == '.') {
        out += "`.`";
        continue;
      }
      if (c == '`') out += '`';
      out += c;
    }
    return out + "`";
  }

  std::string literal(const Cell& value) const override {
    if (!value) return "NULL";
    std::string out(value->size() * 2 + 3, '\0');
    out[0] = '\'';
    const unsigned long n =
        mysql_real_escape_string(conn_.get(), out.data() + 1, value->data(), value->size());
    out.resize(n + 1);
    return out + "'";
  }

  Result<TableShape> describe(const std::string& table, const std::string& key_column) override {
    const auto dot = table.find('.');
    const std::string schema =
        dot == std::string::npos ? literal(database_) : literal(table.substr(0, dot));
    const std::string name = literal(dot == std::string::npos ? table : table.substr(dot + 1));
    auto cols =
        query("SELECT column_name FROM information_schema.columns WHERE table_schema = " + schema +
              " AND table_name = " + name + " ORDER BY ordinal_position");
    if (!cols) return cols.error();
    if (cols->empty())
      return make_error("table " + table + " does not exist on " + name_ +
                        ": create it there (SHOW CREATE TABLE on the source) before resharding");
    auto pk =
        query("SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = " +
              schema + " AND table_name = " + name +
              " AND constraint_name = 'PRIMARY' ORDER BY ordinal_position");
    if (!pk) return pk.error();
    for (Row& r : *cols) *r[0] = lower(*r[0]);
    for (Row& r : *pk) *r[0] = lower(*r[0]);
    return table_shape(table, *cols, *pk, key_column, name_);
  }

  Result<void> begin_snapshot() override {
    return exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
  }
  Result<void> begin() override { return exec("START TRANSACTION"); }
  Result<void> commit() override { return exec("COMMIT"); }
  void rollback() override { (void)exec("ROLLBACK"); }

  Result<std::string> write_position() override {
    auto rows = query("SELECT @@gtid_binlog_pos");
    if (!rows) return rows.error();
    return rows->at(0).at(0).value_or("");
  }

  Result<bool> replayed(const std::string& position) override {
    if (position.empty()) return true;
    auto rows = query("SELECT MASTER_GTID_WAIT(" + literal(position) + ", 0)");
    if (!rows) return rows.error();
    return rows->at(0).at(0).value_or("-1") == "0";
  }

  Result<int> transactions_older_than(std::int64_t unix_ms) override {
    auto rows = query(
        "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_started < "
        "FROM_UNIXTIME(" +
        std::to_string(unix_ms) + " / 1000) AND trx_mysql_thread_id <> CONNECTION_ID()");
    if (!rows) return rows.error();
    return std::stoi(*rows->at(0).at(0));
  }

 private:
  static std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  }

  Error failed(const std::string& sql) const {
    return make_error(name_ + ": " + mysql_error(conn_.get()) + " (in: " + sql.substr(0, 120) +
                      ")");
  }

  MyConn conn_;
  std::string name_;
  std::string database_;
  std::uint64_t affected_ = 0;
};

}  // namespace

Result<std::unique_ptr<ReshardConn>> connect_my_reshard(const ServerAddress& server,
                                                        const CopyLogin& login) {
  MyConn m(mysql_init(nullptr));
  if (!m) return make_error("out of memory");
  const bool socket = !server.unix_socket.empty();
  unsigned protocol = socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
  mysql_options(m.get(), MYSQL_OPT_PROTOCOL, &protocol);
  unsigned timeout =
      static_cast<unsigned>(std::max<long long>(1, (login.connect_timeout.count() + 999) / 1000));
  mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(m.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (!mysql_real_connect(m.get(), socket ? nullptr : server.host.c_str(), login.user.c_str(),
                          login.password.c_str(), login.database.c_str(), server.port,
                          socket ? server.unix_socket.c_str() : nullptr, 0))
    return make_error("cannot connect to " + server.name + " as " + login.user + ": " +
                      mysql_error(m.get()));
  return std::unique_ptr<ReshardConn>(new MyReshardConn(std::move(m), server.name, login.database));
}

}  // namespace shardgate::replication
