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

}  // namespace
}  // namespace smtpgate::smtp
