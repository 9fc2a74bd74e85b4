#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpgate::policy {

// The protocol of a session as the policy sees it.
enum class TlsVersion { None, V1_0, V1_1, V1_2, V1_3 };

// SPEC section 4: modern = TLS 1.2, 1.3; legacy = TLS 1.0, 1.1; none = plaintext.
enum class VersionClass { None, Legacy, Modern };

VersionClass classify(TlsVersion version);
// "none", "1.0", "1.1", "1.2", "1.3" (the labels of reports and configuration).
std::string_view label(TlsVersion version);
std::optional<TlsVersion> parseLabel(std::string_view text);
// From the TLS wire version (0x0301..0x0304); 0 means plaintext; anything else is nullopt.
std::optional<TlsVersion> fromWire(unsigned wireVersion);

}  // namespace smtpgate::policy
