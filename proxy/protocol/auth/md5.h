// PostgreSQL's md5 password authentication (AuthenticationMD5Password), sans-io.
// The server sends a 4-byte salt; the client answers
// "md5" + hex(md5(hex(md5(password + user)) + salt)).
// md5 is weak and kept only for servers and clients that still use it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardgate::auth {

// PostgreSQL's stored form (pg_authid.rolpassword): "md5" + hex(md5(password + user)).
std::string md5_stored_password(std::string_view user, std::string_view password);

// True for "md5" followed by 32 lowercase hex digits, the test PostgreSQL uses
// to tell a stored hash from a plaintext password.
bool is_md5_stored_password(std::string_view text);

// The PasswordMessage payload for a salt. stored_or_plain is either a stored
// hash (see is_md5_stored_password) or a plaintext password.
std::string md5_response(std::string_view stored_or_plain, std::string_view user,
                         std::array<uint8_t, 4> salt);

// Checks a client's PasswordMessage payload in constant time.
bool md5_verify(std::string_view stored_or_plain, std::string_view user,
                std::array<uint8_t, 4> salt, std::string_view client_response);

}  // namespace shardgate::auth
