#include "proxy/protocol/auth/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace shardgate::auth {
namespace {

constexpr std::string_view kPrefix = "md5";
constexpr size_t kHexDigits = 32;

std::string md5_hex(std::string_view data) {
  std::array<unsigned char, 16> digest{};
  unsigned int len = 0;
  // Only fails on allocation failure or an OpenSSL without md5 (FIPS mode);
  // no answer would be safe then (a fixed digest fails open), so stop.
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_md5(), nullptr) != 1 ||
      len != digest.size()) {
    std::fprintf(stderr, "shardgate: fatal: OpenSSL md5 failed\n");
    std::abort();
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(kHexDigits);
  for (unsigned char b : digest) {
    hex += kDigits[b >> 4];
    hex += kDigits[b & 0x0f];
  }
  return hex;
}

}  // namespace

std::string md5_stored_password(std::string_view user, std::string_view password) {
  std::string input(password);
  input += user;
  return std::string(kPrefix) + md5_hex(input);
}

bool is_md5_stored_password(std::string_view text) {
  if (text.size() != kPrefix.size() + kHexDigits || !text.starts_with(kPrefix)) return false;
  for (char c : text.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string md5_response(std::string_view stored_or_plain, std::string_view user,
                         std::array<uint8_t, 4> salt) {
  std::string input = is_md5_stored_password(stored_or_plain)
                          ? std::string(stored_or_plain)
                          : md5_stored_password(user, stored_or_plain);
  input.erase(0, kPrefix.size());
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  return std::string(kPrefix) + md5_hex(input);
}

bool md5_verify(std::string_view stored_or_plain, std::string_view user,
                std::array<uint8_t, 4> salt, std::string_view client_response) {
  const std::string expected = md5_response(stored_or_plain, user, salt);
  // The length is public (always 35); only the content must not leak timing.
  return client_response.size() == expected.size() &&
         CRYPTO_memcmp(client_response.data(), expected.data(), expected.size()) == 0;
}

}  // namespace shardgate::auth
