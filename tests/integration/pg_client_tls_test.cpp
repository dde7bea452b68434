// TLS between clients and shardgate: a listener with a certificate answers
// SSLRequest with 'S' and a handshake, one marked tls_required refuses clear
// text, and one without a certificate answers 'N'. libpq is the client.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace shardgate::it {
namespace {

constexpr int kTlsProxyPort = 21538;

// A self-signed certificate for 127.0.0.1, made once per run.
void make_certificate(const std::string& cert, const std::string& key) {
  std::string out;
  ASSERT_EQ(run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout " +
                    key + " -out " + cert + " 2>&1",
                &out),
            0)
      << out;
}

std::string tls_conninfo(const std::string& sslmode) {
  return "host=127.0.0.1 port=" + std::to_string(kTlsProxyPort) +
         " user=app password=app dbname=app connect_timeout=5 sslmode=" + sslmode;
}

class PgClientTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string cert = sandbox_dir() + "/proxy-cert.pem";
    const std::string key = sandbox_dir() + "/proxy-key.pem";
    make_certificate(cert, key);
    const std::string cfg = write_config_variant(
        "tls", "s|port: 21532|port: " + std::to_string(kTlsProxyPort) +
                   "\\n    tls_cert_file: " + cert + "\\n    tls_key_file: " + key +
                   "\\n    tls_required: true|; s/port: 21533/port: 21539/");
    pid_ = start_proxy(cfg, kTlsProxyPort);
  }
  static void TearDownTestSuite() {
    if (pid_ > 0) stop_proxy(pid_);
  }
  static pid_t pid_;
};
pid_t PgClientTls::pid_ = -1;

TEST_F(PgClientTls, EncryptedSessionWorks) {
  ASSERT_GT(pid_, 0);
  auto c = connect(tls_conninfo("require"));
  EXPECT_EQ(PQsslInUse(c.get()), 1);
  EXPECT_STREQ(PQsslAttribute(c.get(), "protocol"), "TLSv1.3");
  // Reads and writes, simple and extended protocol, over TLS.
  EXPECT_EQ(scalar(c.get(), "SELECT 40 + 2"), "42");
  ASSERT_TRUE(scalar(c.get(), "CREATE TABLE IF NOT EXISTS tls_t (v int)"));
  ASSERT_TRUE(scalar(c.get(), "INSERT INTO tls_t VALUES (7)"));
  const char* params[] = {"7"};
  Res r(PQexecParams(c.get(), "SELECT count(*) FROM tls_t WHERE v = $1", 1, nullptr, params,
                     nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
  EXPECT_NE(std::string(PQgetvalue(r.get(), 0, 0)), "0");
  // A result bigger than one TLS record (16 KB) arrives whole.
  EXPECT_EQ(scalar(c.get(),
                   "SELECT length(string_agg(md5(g::text), '')) FROM "
                   "generate_series(1, 5000) g"),
            "160000");
  EXPECT_EQ(scalar(c.get(), "SELECT sum(length(repeat('x', g))) FROM generate_series(1, 300) g"),
            "45150");
  ASSERT_TRUE(scalar(c.get(), "DROP TABLE tls_t"));
}

TEST_F(PgClientTls, ClearTextIsRefusedWhenTlsIsRequired) {
  ASSERT_GT(pid_, 0);
  Conn c(PQconnectdb(tls_conninfo("disable").c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("requires TLS"), std::string::npos)
      << PQerrorMessage(c.get());
}

TEST_F(PgClientTls, DataSentAfterSslRequestIsRefused) {
  ASSERT_GT(pid_, 0);
  // SSLRequest followed at once by a startup packet in clear text: bytes an
  // attacker could inject before the handshake (CVE-2021-23214).
  std::string bytes("\0\0\0\x08\x04\xd2\x16\x2f", 8);
  bytes += std::string("\0\0\0\x17\0\x03\0\0user\0app\0dbname\0\0", 23);
  const std::string answer = raw_exchange(bytes, kTlsProxyPort);
  EXPECT_NE(answer.find("unencrypted data after SSLRequest"), std::string::npos) << answer;
  // And the listener goes on serving.
  auto c = connect(tls_conninfo("require"));
  EXPECT_EQ(scalar(c.get(), "SELECT 1"), "1");
}

TEST(PgClientNoTls, UnreadableCertificateExitsTwoNamingTheKey) {
  const std::string cfg = write_config_variant(
      "tls-bad",
      "s|port: 21532|port: 21540\\n    tls_cert_file: /nonexistent/cert.pem\\n    "
      "tls_key_file: /nonexistent/key.pem|");
  std::string out;
  EXPECT_EQ(run(bin("shardgate") + " --config " + cfg, &out), 2);
  EXPECT_NE(out.find("listeners[0].tls_cert_file"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent/cert.pem"), std::string::npos) << out;
}

TEST(PgClientNoTls, ListenerWithoutCertificateAnswersN) {
  // sslmode=prefer falls back to clear text; require gives up.
  auto plain = connect(proxy_conninfo() + " sslmode=prefer");
  EXPECT_EQ(PQsslInUse(plain.get()), 0);
  Conn c(PQconnectdb((proxy_conninfo() + " sslmode=require").c_str()));
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(c.get())).find("does not support SSL"), std::string::npos)
      << PQerrorMessage(c.get());
}

}  // namespace
}  // namespace shardgate::it
