#include "proxy/protocol/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "proxy/protocol/auth/md5.h"

namespace shardgate::auth {
namespace {

using Key = std::array<uint8_t, 32>;

constexpr uint32_t kDefaultIterations = 4096;
constexpr size_t kDefaultSaltBytes = 16;
constexpr size_t kNonceBytes = 18;
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

// The primitives below only fail on allocation failure or a broken OpenSSL
// install. There is no safe value to return then (a zeroed key or nonce would
// fail open), so stop the process rather than carry on.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "shardgate: fatal: OpenSSL %s failed\n", what);
    std::abort();
  }
}

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string_view view_of(const Key& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // +1: EVP writes a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes_of(bytes),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Strict: EVP_DecodeBlock skips surrounding whitespace and does not report
// padding, so validate the text first and subtract the padding ourselves.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!is_base64_char(text[i])) return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes_of(text),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) < padding) return std::nullopt;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Key hmac_sha256(std::string_view key, std::string_view data) {
  Key out{};
  unsigned int len = 0;
  const unsigned char* ok = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                                 bytes_of(data), data.size(), out.data(), &len);
  require(ok != nullptr && len == out.size(), "HMAC-SHA-256");
  return out;
}

Key sha256(std::string_view data) {
  Key out{};
  unsigned int len = 0;
  const int ok = EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  require(ok == 1 && len == out.size(), "SHA-256");
  return out;
}

Key xor_keys(const Key& a, const Key& b) {
  Key out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

bool equal_keys(const Key& a, const Key& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

struct DerivedKeys {
  Key client_key;
  Key stored_key;
  Key server_key;
};

// RFC 5802 section 3: SaltedPassword = Hi(password, salt, i), then the keys.
DerivedKeys derive_keys(std::string_view password, std::string_view salt, uint32_t iterations) {
  Key salted{};
  const int ok =
      PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes_of(salt),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data());
  require(ok == 1, "PBKDF2-HMAC-SHA-256");
  DerivedKeys keys{};
  keys.client_key = hmac_sha256(view_of(salted), "Client Key");
  keys.stored_key = sha256(view_of(keys.client_key));
  keys.server_key = hmac_sha256(view_of(salted), "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  return keys;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  require(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1,
          "RAND_bytes");
  return out;
}

std::string random_nonce() {
  return base64_encode(random_bytes(kNonceBytes));
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// Returns the value of "<name>=<value>", or an error naming what was expected.
Result<std::string_view> attribute(std::string_view part, char name, std::string_view what) {
  if (part.size() < 2 || part[0] != name || part[1] != '=') {
    return make_error("SCRAM message is missing " + std::string(what) + " (\"" + name + "=\")");
  }
  return part.substr(2);
}

// RFC 5802 "printable": %x21-7E except ','.
bool is_valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::optional<uint32_t> parse_iterations(std::string_view text) {
  uint32_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value == 0) return std::nullopt;
  return value;
}

Result<Key> decode_key(std::string_view text, std::string_view what) {
  const std::optional<std::string> raw = base64_decode(text);
  if (!raw) return make_error(std::string(what) + " is not valid base64");
  Key key{};
  if (raw->size() != key.size()) {
    return make_error(std::string(what) + " must be 32 bytes, got " + std::to_string(raw->size()));
  }
  std::copy(raw->begin(), raw->end(), key.begin());
  return key;
}

// RFC 5802 saslname: ',' and '=' are escaped as "=2C" and "=3D".
std::string escape_saslname(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

// ---- verifiers ----

Result<ScramVerifier> parse_verifier(std::string_view text) {
  if (!text.starts_with(kVerifierPrefix)) {
    return make_error("SCRAM verifier must start with \"SCRAM-SHA-256$\"");
  }
  const std::vector<std::string_view> sections = split(text.substr(kVerifierPrefix.size()), '$');
  if (sections.size() != 2) {
    return make_error("SCRAM verifier must be SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>");
  }
  const std::vector<std::string_view> params = split(sections[0], ':');
  const std::vector<std::string_view> keys = split(sections[1], ':');
  if (params.size() != 2 || keys.size() != 2) {
    return make_error("SCRAM verifier must be SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>");
  }
  ScramVerifier v;
  const std::optional<uint32_t> iterations = parse_iterations(params[0]);
  if (!iterations) return make_error("SCRAM verifier iteration count must be a positive integer");
  v.iterations = *iterations;
  std::optional<std::string> salt = base64_decode(params[1]);
  if (!salt || salt->empty()) return make_error("SCRAM verifier salt is not valid base64");
  v.salt = std::move(*salt);
  Result<Key> stored = decode_key(keys[0], "SCRAM verifier StoredKey");
  if (!stored) return stored.error();
  Result<Key> server = decode_key(keys[1], "SCRAM verifier ServerKey");
  if (!server) return server.error();
  v.stored_key = *stored;
  v.server_key = *server;
  return v;
}

std::string format_verifier(const ScramVerifier& verifier) {
  return std::string(kVerifierPrefix) + std::to_string(verifier.iterations) + ":" +
         base64_encode(verifier.salt) + "$" + base64_encode(view_of(verifier.stored_key)) + ":" +
         base64_encode(view_of(verifier.server_key));
}

ScramVerifier make_verifier(std::string_view password, std::string_view salt, uint32_t iterations) {
  const DerivedKeys keys = derive_keys(password, salt, iterations);
  return ScramVerifier{iterations, std::string(salt), keys.stored_key, keys.server_key};
}

Result<ScramVerifier> verifier_for(std::string_view configured_password) {
  if (configured_password.starts_with(kVerifierPrefix)) {
    Result<ScramVerifier> parsed = parse_verifier(configured_password);
    if (!parsed) return make_error("configured password " + parsed.error().message());
    return parsed;
  }
  if (is_md5_stored_password(configured_password)) {
    return make_error(
        "configured password is an md5 hash; SCRAM-SHA-256 needs the plaintext password or a "
        "SCRAM-SHA-256 verifier");
  }
  return make_verifier(configured_password, random_bytes(kDefaultSaltBytes), kDefaultIterations);
}

// ---- ScramServer ----

ScramServer::ScramServer(ScramVerifier verifier, std::string server_nonce_for_tests)
    : verifier_(std::move(verifier)),
      server_nonce_(server_nonce_for_tests.empty() ? random_nonce()
                                                   : std::move(server_nonce_for_tests)) {}

Error ScramServer::fail(ScramFailure why, std::string message) {
  state_ = State::Failed;
  failure_ = why;
  return make_error(std::move(message));
}

Result<std::string> ScramServer::on_client_first(std::string_view message) {
  if (state_ != State::ExpectClientFirst) {
    return fail(ScramFailure::Protocol, "unexpected SCRAM client-first-message");
  }
  // gs2-header = cbind-flag "," [authzid] ","
  const size_t flag_end = message.find(',');
  const size_t authzid_end =
      flag_end == std::string_view::npos ? flag_end : message.find(',', flag_end + 1);
  if (authzid_end == std::string_view::npos) {
    return fail(ScramFailure::Protocol, "SCRAM client-first-message has no gs2 header");
  }
  const std::string_view flag = message.substr(0, flag_end);
  if (flag.starts_with("p=")) {
    return fail(ScramFailure::Protocol,
                "client requested channel binding (SCRAM-SHA-256-PLUS), which is not offered; "
                "only SCRAM-SHA-256 is supported");
  }
  // "y" means the client could bind but thinks we cannot: true, we never offer
  // PLUS, so this is no downgrade.
  if (flag != "n" && flag != "y") {
    return fail(ScramFailure::Protocol, "SCRAM gs2 channel-binding flag must be n, y or p=");
  }
  if (authzid_end != flag_end + 1) {
    return fail(ScramFailure::Protocol, "SCRAM authorization identity (a=) is not supported");
  }
  gs2_header_ = std::string(message.substr(0, authzid_end + 1));
  client_first_bare_ = std::string(message.substr(authzid_end + 1));

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  const std::vector<std::string_view> parts = split(client_first_bare_, ',');
  if (parts[0].starts_with("m=")) {
    return fail(ScramFailure::Protocol, "SCRAM mandatory extension (m=) is not supported");
  }
  // The name is ignored: PostgreSQL authenticates the user of the startup packet.
  if (Result<std::string_view> user = attribute(parts[0], 'n', "the username"); !user) {
    return fail(ScramFailure::Protocol, user.error().message());
  }
  if (parts.size() < 2) {
    return fail(ScramFailure::Protocol, "SCRAM client-first-message is missing the nonce");
  }
  Result<std::string_view> nonce = attribute(parts[1], 'r', "the nonce");
  if (!nonce) return fail(ScramFailure::Protocol, nonce.error().message());
  if (!is_valid_nonce(*nonce)) {
    return fail(ScramFailure::Protocol, "SCRAM client nonce is empty or not printable");
  }
  combined_nonce_ = std::string(*nonce) + server_nonce_;
  server_first_ = "r=" + combined_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = State::ExpectClientFinal;
  return server_first_;
}

Result<std::string> ScramServer::on_client_final(std::string_view message) {
  if (state_ != State::ExpectClientFinal) {
    return fail(ScramFailure::Protocol, "unexpected SCRAM client-final-message");
  }
  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  const std::vector<std::string_view> parts = split(message, ',');
  if (parts.size() < 3) {
    return fail(ScramFailure::Protocol, "SCRAM client-final-message is truncated");
  }
  Result<std::string_view> binding = attribute(parts[0], 'c', "the channel binding");
  if (!binding) return fail(ScramFailure::Protocol, binding.error().message());
  const std::optional<std::string> binding_raw = base64_decode(*binding);
  if (!binding_raw || *binding_raw != gs2_header_) {
    return fail(ScramFailure::Protocol,
                "SCRAM channel binding does not match the gs2 header of client-first-message");
  }
  Result<std::string_view> nonce = attribute(parts[1], 'r', "the nonce");
  if (!nonce) return fail(ScramFailure::Protocol, nonce.error().message());
  if (*nonce != combined_nonce_) {
    return fail(ScramFailure::Protocol, "SCRAM nonce does not match the one of this exchange");
  }
  for (size_t i = 2; i + 1 < parts.size(); ++i) {
    if (parts[i].size() < 2 || parts[i][1] != '=') {
      return fail(ScramFailure::Protocol, "SCRAM client-final-message has a malformed attribute");
    }
  }
  Result<std::string_view> proof = attribute(parts.back(), 'p', "the proof");
  if (!proof) return fail(ScramFailure::Protocol, proof.error().message());

  const std::string_view without_proof =
      message.substr(0, message.size() - parts.back().size() - 1);
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  if (Result<void> checked = check_proof(auth_message, *proof); !checked) return checked.error();
  state_ = State::Done;
  const Key signature = hmac_sha256(view_of(verifier_.server_key), auth_message);
  return "v=" + base64_encode(view_of(signature));
}

// RFC 5802 section 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage),
// and the client knew the password iff H(ClientKey) == StoredKey.
Result<void> ScramServer::check_proof(std::string_view auth_message, std::string_view proof) {
  Result<Key> client_proof = decode_key(proof, "SCRAM client proof");
  if (!client_proof) return fail(ScramFailure::Protocol, client_proof.error().message());
  const Key client_signature = hmac_sha256(view_of(verifier_.stored_key), auth_message);
  const Key client_key = xor_keys(*client_proof, client_signature);
  if (!equal_keys(sha256(view_of(client_key)), verifier_.stored_key)) {
    return fail(ScramFailure::WrongPassword,
                "password authentication failed: SCRAM client proof does not match");
  }
  return {};
}

// ---- ScramClient ----

ScramClient::ScramClient(std::string password, std::string client_nonce_for_tests,
                         std::string username)
    : password_(std::move(password)),
      client_nonce_(client_nonce_for_tests.empty() ? random_nonce()
                                                   : std::move(client_nonce_for_tests)),
      client_first_bare_("n=" + escape_saslname(username) + ",r=" + client_nonce_) {}

std::string ScramClient::client_first_message() const {
  return "n,," + client_first_bare_;
}

Error ScramClient::fail(std::string message) {
  state_ = State::Failed;
  return make_error(std::move(message));
}

Result<std::string> ScramClient::on_server_first(std::string_view message) {
  if (state_ != State::ExpectServerFirst) return fail("unexpected SCRAM server-first-message");
  // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," ext]
  const std::vector<std::string_view> parts = split(message, ',');
  if (parts[0].starts_with("m=")) return fail("SCRAM mandatory extension (m=) is not supported");
  if (parts.size() < 3) return fail("SCRAM server-first-message is truncated");
  Result<std::string_view> nonce = attribute(parts[0], 'r', "the nonce");
  if (!nonce) return fail(nonce.error().message());
  if (!is_valid_nonce(*nonce) || nonce->size() <= client_nonce_.size() ||
      !nonce->starts_with(client_nonce_)) {
    return fail("SCRAM server nonce does not extend the client nonce");
  }
  Result<std::string_view> salt_text = attribute(parts[1], 's', "the salt");
  if (!salt_text) return fail(salt_text.error().message());
  const std::optional<std::string> salt = base64_decode(*salt_text);
  if (!salt || salt->empty()) return fail("SCRAM salt is empty or not valid base64");
  Result<std::string_view> iter_text = attribute(parts[2], 'i', "the iteration count");
  if (!iter_text) return fail(iter_text.error().message());
  const std::optional<uint32_t> iterations = parse_iterations(*iter_text);
  if (!iterations) return fail("SCRAM iteration count must be a positive integer");

  const DerivedKeys keys = derive_keys(password_, *salt, *iterations);
  // We send "n,,": base64("n,,") is "biws".
  const std::string without_proof = "c=biws,r=" + std::string(*nonce);
  const std::string auth_message =
      client_first_bare_ + "," + std::string(message) + "," + without_proof;
  const Key client_signature = hmac_sha256(view_of(keys.stored_key), auth_message);
  const Key proof = xor_keys(keys.client_key, client_signature);
  expected_server_signature_ = hmac_sha256(view_of(keys.server_key), auth_message);
  state_ = State::ExpectServerFinal;
  return without_proof + ",p=" + base64_encode(view_of(proof));
}

Result<void> ScramClient::on_server_final(std::string_view message) {
  if (state_ != State::ExpectServerFinal) return fail("unexpected SCRAM server-final-message");
  // server-final-message = (server-error / verifier) ["," extensions]
  const std::string_view first = split(message, ',')[0];
  if (first.starts_with("e=")) {
    return fail("server rejected SCRAM authentication: " + std::string(first.substr(2)));
  }
  Result<std::string_view> verifier = attribute(first, 'v', "the server signature");
  if (!verifier) return fail(verifier.error().message());
  Result<Key> signature = decode_key(*verifier, "SCRAM server signature");
  if (!signature) return fail(signature.error().message());
  if (!equal_keys(*signature, expected_server_signature_)) {
    return fail("SCRAM server signature does not match: the server does not know the password");
  }
  state_ = State::Done;
  return {};
}

}  // namespace shardgate::auth
