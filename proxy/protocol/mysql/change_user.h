// COM_CHANGE_USER, sans-io: the client logs in again as another user on the
// same connection. Only parsing: the proxy answers it itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace shardgate::mysql {

struct ChangeUser {
  std::string username;
  std::string auth_response;
  std::string database;
  std::uint16_t charset = 0;  // 0 when the client sent none
  std::string auth_plugin_name;
};

// payload: the whole command, 0x11 first. capabilities: those agreed at login.
Result<ChangeUser> parse_change_user(std::string_view payload, std::uint32_t capabilities);

}  // namespace shardgate::mysql
