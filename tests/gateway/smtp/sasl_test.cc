#include "gateway/smtp/sasl.h"

#include <catch2/catch.hpp>

namespace smtpgate::smtp {
namespace {

TEST_CASE("sasl: base64 round trip and RFC 4648 vectors", "[smtp][sasl]") {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    CHECK(base64Encode(plain) == encoded);
    CHECK(base64Decode(encoded) == std::optional<std::string>(plain));
  }
  const std::string binary("\0\xff\x10\x80", 4);
  CHECK(base64Decode(base64Encode(binary)) == std::optional<std::string>(binary));
}

TEST_CASE("sasl: malformed base64 is refused", "[smtp][sasl]") {
  for (const char* bad :
       {"Zg", "Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "Zm=v", "Zh==", "Zm9=", "Zm 9v", "Zm9v\r"}) {
    INFO(bad);
    CHECK_FALSE(base64Decode(bad).has_value());
  }
}

TEST_CASE("sasl: responses and PLAIN", "[smtp][sasl]") {
  CHECK(decodeSaslResponse("=") == std::optional<std::string>(""));
  CHECK(decodeSaslResponse("") == std::optional<std::string>(""));
  auto creds = parsePlain(std::string("zid\0user\0pass", 13));
  REQUIRE(creds);
  CHECK(creds->authzid == "zid");
  CHECK(creds->authcid == "user");
  CHECK(creds->password == "pass");
  auto noZid = parsePlain(std::string("\0user\0", 6));
  REQUIRE(noZid);
  CHECK(noZid->password.empty());
  CHECK_FALSE(parsePlain("user"));
  CHECK_FALSE(parsePlain(std::string("user\0pass", 9)));
  CHECK_FALSE(parsePlain(std::string("\0\0pass", 6)));
  CHECK_FALSE(parsePlain(std::string("a\0b\0c\0d", 7)));
}

// XOAUTH2's separator, ^A.
const std::string kA = "\x01";

TEST_CASE("sasl: XOAUTH2 gives the user", "[smtp][sasl]") {
  CHECK(xoauth2User("user=alice@contoso.com" + kA + "auth=Bearer ya29.vF9dft4qmTc2Nvb3" + kA +
                    kA) == std::optional<std::string>("alice@contoso.com"));
  // RFC 6750 b64token: the token alphabet with trailing '=' padding; the scheme in any case.
  CHECK(xoauth2User("user=u@b.c" + kA + "auth=bearer A-._~+/z==" + kA + kA) ==
        std::optional<std::string>("u@b.c"));
  // Google's documented example, base64 as on the wire.
  const std::optional<std::string> decoded = base64Decode(
      "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhk"
      "SFJoZG1semRHRXVZMjl0Q2cBAQ==");
  REQUIRE(decoded);
  CHECK(xoauth2User(*decoded) == std::optional<std::string>("someuser@example.com"));
}

TEST_CASE("sasl: malformed XOAUTH2 is refused", "[smtp][sasl]") {
  const std::string user = "user=u@b.c" + kA;
  const std::string bad[] = {
      "",
      "user=" + kA + "auth=Bearer tok" + kA + kA,                          // empty user
      user + "auth=Bearer " + kA + kA,                                     // empty token
      user + "auth=Bearer" + kA + kA,                                      // no token at all
      user + "auth=Bearer tok" + kA,                                       // one final ^A
      user + "auth=Bearer tok",                                            // none
      user + "auth=Bearer tok" + kA + kA + "x",                            // bytes after the end
      user + "auth=Bearer tok" + kA + kA + kA,                             // three ^A
      user + "auth=Bearer tok" + kA + "x=y" + kA + kA,                     // a third field
      "auth=Bearer tok" + kA + "user=u@b.c" + kA + kA,                     // fields swapped
      "User=u@b.c" + kA + "auth=Bearer tok" + kA + kA,                     // key case
      " " + user + "auth=Bearer tok" + kA + kA,                            // leading space
      user + "Auth=Bearer tok" + kA + kA,                                  // key case
      user + "auth=Basic dTpw" + kA + kA,                                  // another scheme
      user + "auth=Bearer  tok" + kA + kA,                                 // two spaces
      user + "auth=Bearertok" + kA + kA,                                   // no space
      user + "auth=Bearer tok tok" + kA + kA,                              // space in the token
      user + "auth=Bearer =tok" + kA + kA,                                 // padding first
      user + "auth=Bearer to=k" + kA + kA,                                 // padding inside
      user + kA,                                                           // no auth field
      "user=u@b.c",                                                        // nothing else
      "user=u\r\n@b.c" + kA + "auth=Bearer tok" + kA + kA,                 // control in the user
      std::string("user=u\0@b.c", 11) + kA + "auth=Bearer tok" + kA + kA,  // NUL in the user
  };
  for (const std::string& text : bad) {
    INFO(text);
    CHECK_FALSE(xoauth2User(text).has_value());
  }
  // The good form of the cases above, so they fail for the reason given.
  CHECK(xoauth2User(user + "auth=Bearer tok" + kA + kA));
}

}  // namespace
}  // namespace smtpgate::smtp
