#include "proxy/protocol/auth/md5.h"

#include <gtest/gtest.h>

#include <string>

namespace shardgate::auth {
namespace {

// `printf secretpostgres | md5sum` -> 53f48b7c4b76a86ce72276c5755f217d
constexpr std::string_view kStored = "md553f48b7c4b76a86ce72276c5755f217d";
// Python: "md5" + md5(b"53f48b7c4b76a86ce72276c5755f217d" + bytes([1, 2, 3, 4])).hexdigest()
constexpr std::string_view kResponse = "md5bb41a296aab6baccb36ff243a562abff";
constexpr std::array<uint8_t, 4> kSalt = {0x01, 0x02, 0x03, 0x04};

TEST(Md5Auth, StoredPasswordKnownValue) {
  EXPECT_EQ(md5_stored_password("postgres", "secret"), kStored);
}

TEST(Md5Auth, ResponseKnownValueFromPlainOrStored) {
  EXPECT_EQ(md5_response("secret", "postgres", kSalt), kResponse);
  EXPECT_EQ(md5_response(kStored, "postgres", kSalt), kResponse);
}

TEST(Md5Auth, RecognizesStoredForm) {
  EXPECT_TRUE(is_md5_stored_password(kStored));
  EXPECT_FALSE(is_md5_stored_password("md5"));
  EXPECT_FALSE(is_md5_stored_password("md553F48B7C4B76A86CE72276C5755F217D"));  // uppercase
  EXPECT_FALSE(is_md5_stored_password("md553f48b7c4b76a86ce72276c5755f217"));   // short
  EXPECT_FALSE(is_md5_stored_password("secret"));
}

TEST(Md5Auth, PlaintextStartingWithMd5IsHashedAsPlaintext) {
  EXPECT_EQ(md5_response("md5pass", "u", kSalt),
            md5_response(md5_stored_password("u", "md5pass"), "u", kSalt));
}

TEST(Md5Auth, VerifyAcceptsTheRightResponse) {
  EXPECT_TRUE(md5_verify("secret", "postgres", kSalt, kResponse));
  EXPECT_TRUE(md5_verify(kStored, "postgres", kSalt, kResponse));
}

TEST(Md5Auth, VerifyRejectsWrongResponses) {
  EXPECT_FALSE(md5_verify("Secret", "postgres", kSalt, kResponse));         // password
  EXPECT_FALSE(md5_verify("secret", "postgre", kSalt, kResponse));          // user
  EXPECT_FALSE(md5_verify("secret", "postgres", {1, 2, 3, 5}, kResponse));  // salt
  EXPECT_FALSE(md5_verify("secret", "postgres", kSalt, ""));
  EXPECT_FALSE(md5_verify("secret", "postgres", kSalt, kResponse.substr(0, 34)));
  EXPECT_FALSE(md5_verify("secret", "postgres", kSalt, std::string(kResponse) + "0"));
  EXPECT_FALSE(md5_verify("secret", "postgres", kSalt, "MD5BB41A296AAB6BACCB36FF243A562ABFF"));
  // The stored hash itself is not a valid response (it is not salted).
  EXPECT_FALSE(md5_verify("secret", "postgres", kSalt, kStored));
}

}  // namespace
}  // namespace shardgate::auth
