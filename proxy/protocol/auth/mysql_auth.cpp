#include "proxy/protocol/auth/mysql_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace shardgate::auth {
namespace {

// These primitives only fail on allocation failure or a broken OpenSSL install.
// There is no safe value to return then (a zeroed digest or nonce would fail
// open), so stop the process rather than carry on.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "shardgate: fatal: OpenSSL %s failed\n", what);
    std::abort();
  }
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(const EVP_MD* md, std::string_view a, std::string_view b = {}) {
  std::array<std::uint8_t, N> out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  require(ctx != nullptr, "EVP_MD_CTX_new");
  unsigned int len = 0;
  const bool ok = EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
                  EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == N;
  EVP_MD_CTX_free(ctx);
  require(ok, "digest");
  return out;
}

Sha1Digest sha1(std::string_view a, std::string_view b = {}) {
  return digest<20>(EVP_sha1(), a, b);
}

Sha256Digest sha256(std::string_view a, std::string_view b = {}) {
  return digest<32>(EVP_sha256(), a, b);
}

template <std::size_t N>
std::string_view view_of(const std::array<std::uint8_t, N>& d) {
  return {reinterpret_cast<const char*>(d.data()), N};
}

template <std::size_t N>
std::array<std::uint8_t, N> xor_with(const std::array<std::uint8_t, N>& a, std::string_view b) {
  std::array<std::uint8_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = a[i] ^ static_cast<std::uint8_t>(b[i]);
  return out;
}

template <std::size_t N>
bool equal_digests(const std::array<std::uint8_t, N>& a, const std::array<std::uint8_t, N>& b) {
  return CRYPTO_memcmp(a.data(), b.data(), N) == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::size_t kNativeHashTextSize = 41;  // '*' + 40 hex digits

// Clients send an empty response for an empty password; some send a lone NUL.
bool is_empty_response(std::string_view response) {
  return response.empty() || (response.size() == 1 && response[0] == '\0');
}

}  // namespace

std::string make_mysql_nonce() {
  std::string nonce(kMysqlNonceSize, '\0');
  require(RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                     static_cast<int>(nonce.size())) == 1,
          "RAND_bytes");
  for (char& c : nonce) {
    c = static_cast<char>(c & 0x7F);
    if (c == '\0' || c == '$') ++c;
  }
  return nonce;
}

Result<std::string_view> nonce_from_plugin_data(std::string_view plugin_data) {
  if (plugin_data.size() == kMysqlNonceSize + 1 && plugin_data.back() == '\0') {
    plugin_data.remove_suffix(1);
  }
  if (plugin_data.size() != kMysqlNonceSize) {
    return make_error("auth plugin data of " + std::to_string(plugin_data.size()) +
                      " bytes is not a 20-byte nonce");
  }
  return plugin_data;
}

// ---------------------------------------------------------------- mysql_native_password

std::string native_password_scramble(std::string_view password, std::string_view nonce) {
  if (password.empty()) return {};
  const Sha1Digest stage1 = sha1(password);
  const Sha1Digest stage2 = sha1(view_of(stage1));
  const Sha1Digest mask = sha1(nonce, view_of(stage2));
  return std::string(view_of(xor_with(stage1, view_of(mask))));
}

NativePasswordVerifier native_password_verifier(std::string_view password) {
  NativePasswordVerifier v;
  if (password.empty()) {
    v.empty_password = true;
    return v;
  }
  v.stage2 = sha1(view_of(sha1(password)));
  return v;
}

Result<NativePasswordVerifier> parse_native_password_hash(std::string_view text) {
  NativePasswordVerifier v;
  if (text.empty()) {
    v.empty_password = true;
    return v;
  }
  if (text.size() != kNativeHashTextSize || text[0] != '*') {
    return make_error("mysql_native_password hash must be '*' and 40 hex digits");
  }
  for (std::size_t i = 0; i < v.stage2.size(); ++i) {
    const int hi = hex_value(text[1 + 2 * i]);
    const int lo = hex_value(text[2 + 2 * i]);
    if (hi < 0 || lo < 0) return make_error("mysql_native_password hash has a non-hex digit");
    v.stage2[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return v;
}

std::string format_native_password_hash(const NativePasswordVerifier& verifier) {
  if (verifier.empty_password) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "*";
  for (const std::uint8_t b : verifier.stage2) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

Result<NativePasswordVerifier> native_verifier_for(std::string_view configured_password) {
  if (configured_password.size() == kNativeHashTextSize && configured_password[0] == '*') {
    auto parsed = parse_native_password_hash(configured_password);
    if (!parsed) return make_error("configured password " + parsed.error().message());
    return parsed;
  }
  return native_password_verifier(configured_password);
}

bool verify_native_password(const NativePasswordVerifier& verifier, std::string_view nonce,
                            std::string_view response) {
  if (verifier.empty_password) return is_empty_response(response);
  if (response.size() != std::tuple_size_v<Sha1Digest>) return false;
  const Sha1Digest mask = sha1(nonce, view_of(verifier.stage2));
  const Sha1Digest stage1 = xor_with(mask, response);
  return equal_digests(sha1(view_of(stage1)), verifier.stage2);
}

// ---------------------------------------------------------------- caching_sha2_password

std::string caching_sha2_scramble(std::string_view password, std::string_view nonce) {
  if (password.empty()) return {};
  const Sha256Digest stage1 = sha256(password);
  const Sha256Digest stage2 = sha256(view_of(stage1));
  const Sha256Digest mask = sha256(view_of(stage2), nonce);
  return std::string(view_of(xor_with(stage1, view_of(mask))));
}

bool verify_caching_sha2_scramble(const Sha256Digest& stage2, std::string_view nonce,
                                  std::string_view response) {
  if (response.size() != std::tuple_size_v<Sha256Digest>) return false;
  const Sha256Digest mask = sha256(view_of(stage2), nonce);
  const Sha256Digest stage1 = xor_with(mask, response);
  return equal_digests(sha256(view_of(stage1)), stage2);
}

bool verify_caching_sha2_scramble(std::string_view password, std::string_view nonce,
                                  std::string_view response) {
  if (password.empty()) return is_empty_response(response);
  return verify_caching_sha2_scramble(sha256(view_of(sha256(password))), nonce, response);
}

// ---------------------------------------------------------------- CachingSha2Server

CachingSha2Server::CachingSha2Server(std::string password, std::string nonce,
                                     bool require_full_auth)
    : password_(std::move(password)),
      nonce_(std::move(nonce)),
      require_full_auth_(require_full_auth) {}

Error CachingSha2Server::fail(MysqlAuthFailure why, std::string message) {
  state_ = State::Failed;
  failure_ = why;
  return make_error(std::move(message));
}

Result<CachingSha2Server::Next> CachingSha2Server::on_client_response(std::string_view response) {
  if (state_ != State::ExpectScramble) {
    return fail(MysqlAuthFailure::Protocol, "caching_sha2_password scramble out of order");
  }
  // An empty response claims an empty password: nothing to scramble, no fast-auth step.
  if (is_empty_response(response)) {
    if (!password_.empty()) {
      return fail(MysqlAuthFailure::WrongPassword, "client sent no password");
    }
    state_ = State::Done;
    return Next::SendOk;
  }
  if (require_full_auth_) {
    state_ = State::ExpectFullAuth;
    return Next::SendPerformFullAuth;
  }
  if (response.size() != std::tuple_size_v<Sha256Digest>) {
    return fail(MysqlAuthFailure::Protocol, "caching_sha2_password scramble of " +
                                                std::to_string(response.size()) +
                                                " bytes (want 32)");
  }
  // Unlike MySQL, a mismatch is final: MySQL falls back to full auth because a
  // miss may just mean its cache is cold, but the proxy knows the password.
  if (!verify_caching_sha2_scramble(password_, nonce_, response)) {
    return fail(MysqlAuthFailure::WrongPassword, "caching_sha2_password scramble does not match");
  }
  state_ = State::Done;
  return Next::SendFastAuthSuccess;
}

Result<CachingSha2Server::Next> CachingSha2Server::on_full_auth(std::string_view packet, bool tls) {
  if (state_ != State::ExpectFullAuth) {
    return fail(MysqlAuthFailure::Protocol, "caching_sha2_password full auth out of order");
  }
  if (!tls) {
    return fail(MysqlAuthFailure::NeedsTls,
                "caching_sha2_password full authentication requires TLS (RSA key exchange is not "
                "supported)");
  }
  if (packet.empty() || packet.back() != '\0') {
    return fail(MysqlAuthFailure::Protocol, "caching_sha2_password password is not NUL-terminated");
  }
  packet.remove_suffix(1);
  // Compare digests, not the strings, so the time taken does not depend on
  // where (or whether by length) they differ.
  if (!equal_digests(sha256(packet), sha256(password_))) {
    return fail(MysqlAuthFailure::WrongPassword, "caching_sha2_password password does not match");
  }
  state_ = State::Done;
  return Next::SendOk;
}

// ---------------------------------------------------------------- CachingSha2Client

CachingSha2Client::CachingSha2Client(std::string password, std::string nonce)
    : password_(std::move(password)), nonce_(std::move(nonce)) {}

std::string CachingSha2Client::initial_response() const {
  return caching_sha2_scramble(password_, nonce_);
}

Result<std::optional<std::string>> CachingSha2Client::on_more_data(std::string_view data,
                                                                   bool tls) {
  if (data.size() != 1) {
    return make_error("unexpected caching_sha2_password data from server (" +
                      std::to_string(data.size()) + " bytes)");
  }
  switch (static_cast<std::uint8_t>(data[0])) {
    case kCachingSha2FastAuthSuccess:
      return std::optional<std::string>{};
    case kCachingSha2PerformFullAuth: {
      if (!tls) {
        return make_error(
            "server requires caching_sha2_password full authentication, which needs TLS (RSA key "
            "exchange is not supported)");
      }
      std::string packet = password_;
      packet.push_back('\0');
      return std::optional<std::string>{std::move(packet)};
    }
    default:
      return make_error("unexpected caching_sha2_password code " +
                        std::to_string(static_cast<std::uint8_t>(data[0])));
  }
}

}  // namespace shardgate::auth
