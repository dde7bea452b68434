#include "proxy/protocol/mysql/change_user.h"

#include "proxy/protocol/mysql/constants.h"
#include "proxy/protocol/mysql/packet.h"

namespace shardgate::mysql {

Result<ChangeUser> parse_change_user(std::string_view payload, std::uint32_t capabilities) {
  PayloadReader r(payload);
  auto command = r.u8();
  if (!command || *command != kComChangeUser) return make_error("not a COM_CHANGE_USER");
  ChangeUser out;
  auto user = r.cstr();
  if (!user) return user.error();
  out.username = std::string(*user);
  if (capabilities & kClientSecureConnection) {
    auto length = r.u8();
    if (!length) return length.error();
    auto data = r.bytes(*length);
    if (!data) return data.error();
    out.auth_response = std::string(*data);
  } else {
    auto data = r.cstr();
    if (!data) return data.error();
    out.auth_response = std::string(*data);
  }
  auto db = r.cstr();
  if (!db) return db.error();
  out.database = std::string(*db);
  // The rest came later in the protocol's life: clients may stop here.
  if (r.remaining() >= 2) {
    auto charset = r.u16();
    if (!charset) return charset.error();
    out.charset = *charset;
  }
  if ((capabilities & kClientPluginAuth) && !r.at_end()) {
    auto plugin = r.cstr();
    if (!plugin) return plugin.error();
    out.auth_plugin_name = std::string(*plugin);
  }
  return out;
}

}  // namespace shardgate::mysql
