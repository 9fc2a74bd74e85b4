#include <catch2/catch.hpp>

#include "policy/tls_version.h"

using namespace smtpgate::policy;

TEST_CASE("version classes follow SPEC section 4") {
  CHECK(classify(TlsVersion::None) == VersionClass::None);
  CHECK(classify(TlsVersion::V1_0) == VersionClass::Legacy);
  CHECK(classify(TlsVersion::V1_1) == VersionClass::Legacy);
  CHECK(classify(TlsVersion::V1_2) == VersionClass::Modern);
  CHECK(classify(TlsVersion::V1_3) == VersionClass::Modern);
}

TEST_CASE("version labels round-trip and wire versions map") {
  for (auto text : {"none", "1.0", "1.1", "1.2", "1.3"}) {
    auto v = parseLabel(text);
    REQUIRE(v);
    CHECK(label(*v) == text);
  }
  CHECK_FALSE(parseLabel("1.4"));
  CHECK_FALSE(parseLabel("TLSv1.2"));
  CHECK(fromWire(0x0303) == TlsVersion::V1_2);
  CHECK(fromWire(0) == TlsVersion::None);
  CHECK_FALSE(fromWire(0x0300));  // SSL 3.0 is never a version we speak
}
