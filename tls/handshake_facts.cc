#include "tls/handshake_facts.h"

namespace smtpgate::tls {

std::string versionLabel(uint16_t wireVersion) {
  switch (wireVersion) {
    case kTls10:
      return "1.0";
    case kTls11:
      return "1.1";
    case kTls12:
      return "1.2";
    case kTls13:
      return "1.3";
    default:
      return "";
  }
}

std::string versionName(uint16_t wireVersion) {
  switch (wireVersion) {
    case kTls10:
      return "TLSv1";
    case kTls11:
      return "TLSv1.1";
    case kTls12:
      return "TLSv1.2";
    case kTls13:
      return "TLSv1.3";
    default:
      return "";
  }
}

}  // namespace smtpgate::tls
