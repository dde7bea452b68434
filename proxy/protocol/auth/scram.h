// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, sans-io: each
// object takes the bytes of one SASL message and returns the next one to send.
// The session code moves the bytes through AuthenticationSASL* / SASLResponse
// frames; nothing here touches a socket.
//
// Channel binding is not offered (no SCRAM-SHA-256-PLUS): the gs2 header is
// "n,," from us, and "n,," or "y,," is accepted from a client.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shardgate::auth {

inline constexpr std::string_view kScramMechanism = "SCRAM-SHA-256";

// What the server needs to check a client without knowing its password.
struct ScramVerifier {
  uint32_t iterations = 0;
  std::string salt;  // raw bytes
  std::array<uint8_t, 32> stored_key{};
  std::array<uint8_t, 32> server_key{};
};

// Parses PostgreSQL's stored form (pg_authid.rolpassword):
// "SCRAM-SHA-256$<iter>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>".
Result<ScramVerifier> parse_verifier(std::string_view text);
std::string format_verifier(const ScramVerifier& verifier);

// The password is used as given: SASLprep normalization is not applied, which
// matches PostgreSQL for ASCII passwords (non-ASCII ones may differ).
ScramVerifier make_verifier(std::string_view password, std::string_view salt, uint32_t iterations);

// For a password from the configuration: a SCRAM verifier string is parsed;
// anything else is taken as plaintext and gets a random 16-byte salt and 4096
// iterations. Unlike PostgreSQL, a malformed verifier is an error rather than a
// plaintext password (in a config file it is almost surely a truncated paste),
// and an md5 stored hash is refused: no SCRAM verifier can be derived from it.
Result<ScramVerifier> verifier_for(std::string_view configured_password);

enum class ScramFailure {
  Protocol,       // malformed, out of order, or unsupported message
  WrongPassword,  // well-formed exchange whose proof does not match
};

// The proxy authenticating a client. Call on_client_first, then on_client_final.
class ScramServer {
 public:
  // server_nonce_for_tests: empty means 18 random bytes, base64-encoded.
  explicit ScramServer(ScramVerifier verifier, std::string server_nonce_for_tests = {});

  // Returns the server-first-message.
  Result<std::string> on_client_first(std::string_view client_first_message);
  // Returns the server-final-message ("v=...") once the proof checks out.
  Result<std::string> on_client_final(std::string_view client_final_message);

  // Why the last call failed; empty while nothing has failed. The session maps
  // WrongPassword to SQLSTATE 28P01 and Protocol to 08P01.
  std::optional<ScramFailure> last_failure() const { return failure_; }

 private:
  enum class State { ExpectClientFirst, ExpectClientFinal, Done, Failed };

  Error fail(ScramFailure why, std::string message);
  Result<void> check_proof(std::string_view auth_message, std::string_view proof);

  ScramVerifier verifier_;
  std::string server_nonce_;
  State state_ = State::ExpectClientFirst;
  std::optional<ScramFailure> failure_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string combined_nonce_;
  std::string server_first_;
};

// The proxy authenticating to a PostgreSQL server. Send client_first_message(),
// then feed on_server_first and on_server_final.
class ScramClient {
 public:
  // client_nonce_for_tests: empty means 18 random bytes, base64-encoded.
  // username: PostgreSQL takes the user from the startup packet and clients
  // send "n=" empty; a name is only needed to reproduce RFC test vectors.
  explicit ScramClient(std::string password, std::string client_nonce_for_tests = {},
                       std::string username = {});

  std::string client_first_message() const;
  // Returns the client-final-message.
  Result<std::string> on_server_first(std::string_view server_first_message);
  // Succeeds only when the server proved it knows the password.
  Result<void> on_server_final(std::string_view server_final_message);

 private:
  enum class State { ExpectServerFirst, ExpectServerFinal, Done, Failed };

  Error fail(std::string message);

  std::string password_;
  std::string client_nonce_;
  std::string client_first_bare_;
  State state_ = State::ExpectServerFirst;
  std::array<uint8_t, 32> expected_server_signature_{};
};

}  // namespace shardgate::auth
