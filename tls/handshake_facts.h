#pragma once

#include <cstdint>
#include <string>

namespace smtpgate::tls {

// Wire values of the protocol versions (TLS1_VERSION ... TLS1_3_VERSION).
inline constexpr uint16_t kTls10 = 0x0301;
inline constexpr uint16_t kTls11 = 0x0302;
inline constexpr uint16_t kTls12 = 0x0303;
inline constexpr uint16_t kTls13 = 0x0304;

// "1.0", "1.1", "1.2", "1.3" for the four versions, "" for anything else.
std::string versionLabel(uint16_t wireVersion);
// "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" (the names mail logs use).
std::string versionName(uint16_t wireVersion);

// What one handshake established, as the policy and the traces see it.
struct HandshakeFacts {
  uint16_t version = 0;       // negotiated wire version
  std::string cipher;         // IANA/RFC name, e.g. "TLS_AES_256_GCM_SHA384"
  std::string cipherOpenSsl;  // OpenSSL-style name, e.g. "ECDHE-RSA-AES256-GCM-SHA384"
  int cipherBits = 0;
  std::string sni;  // server name the client asked for ("" when none)
  uint16_t maxOfferedVersion =
      0;  // highest version in the ClientHello (supported_versions or legacy_version)
  std::string certificateKeyType;  // "ECDSA" or "RSA": which certificate was served
  std::string clientCertSha256;    // hex SHA-256 of the client certificate, "" when none
  bool resumed = false;
  // What the server engine's ClientHello hook did (TlsEngine::setClientHelloHook); set also
  // when the handshake then fails, so that the gateway can record rule D1.
  uint16_t hookMinVersion = 0;        // the minimum the hook raised the range to; 0: not raised
  bool versionRefusedByHook = false;  // the endpoint's own range accepts the client's versions,
                                      // the hook's minimum does not: protocol_version follows
  bool rejectedByHook = false;        // the hook aborted the handshake (verdict.reject)
};

}  // namespace smtpgate::tls
