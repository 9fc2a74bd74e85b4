#pragma once

#include <string>
#include <vector>

namespace smtpgate::tls {

enum class KeyType { Ecdsa, Rsa };

struct PemPair {
  std::string certPem;
  std::string keyPem;
};

// A self-signed certificate (SAN dNSNames = names, first name also the CN) valid from one hour
// ago for `days` days. ECDSA keys are P-256, RSA keys 2048 bits. Empty PEMs and `error` set on
// failure.
PemPair makeSelfSigned(KeyType type, const std::vector<std::string>& names, int days,
                       std::string& error);

}  // namespace smtpgate::tls
