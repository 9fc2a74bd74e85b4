#include "policy/tls_version.h"

namespace smtpgate::policy {

VersionClass classify(TlsVersion version) {
  switch (version) {
    case TlsVersion::None:
      return VersionClass::None;
    case TlsVersion::V1_0:
    case TlsVersion::V1_1:
      return VersionClass::Legacy;
    case TlsVersion::V1_2:
    case TlsVersion::V1_3:
      return VersionClass::Modern;
  }
  return VersionClass::None;
}

std::string_view label(TlsVersion version) {
  switch (version) {
    case TlsVersion::None:
      return "none";
    case TlsVersion::V1_0:
      return "1.0";
    case TlsVersion::V1_1:
      return "1.1";
    case TlsVersion::V1_2:
      return "1.2";
    case TlsVersion::V1_3:
      return "1.3";
  }
  return "none";
}

std::optional<TlsVersion> parseLabel(std::string_view text) {
  for (TlsVersion v : {TlsVersion::None, TlsVersion::V1_0, TlsVersion::V1_1, TlsVersion::V1_2,
                       TlsVersion::V1_3}) {
    if (label(v) == text) {
      return v;
    }
  }
  return std::nullopt;
}

std::optional<TlsVersion> fromWire(unsigned wireVersion) {
  switch (wireVersion) {
    case 0:
      return TlsVersion::None;
    case 0x0301:
      return TlsVersion::V1_0;
    case 0x0302:
      return TlsVersion::V1_1;
    case 0x0303:
      return TlsVersion::V1_2;
    case 0x0304:
      return TlsVersion::V1_3;
    default:
      return std::nullopt;
  }
}

}  // namespace smtpgate::policy
