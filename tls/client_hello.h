#pragma once

#include <cstdint>
#include <vector>

typedef struct ssl_early_callback_ctx SSL_CLIENT_HELLO;

namespace smtpgate::tls {

// The parts of a ClientHello that certificate selection and the traces need, decoded once.
// GREASE values (RFC 8701) are dropped from every list so that no caller trips over them.
struct ClientHelloSummary {
  uint16_t legacyVersion = 0;
  std::vector<uint16_t> supportedVersions;  // empty when the extension is absent
  std::vector<uint16_t> cipherSuites;
  std::vector<uint16_t> signatureAlgorithms;
  std::vector<uint16_t> groups;
  bool hasSupportedVersions = false;
  bool hasSignatureAlgorithms = false;
  bool hasGroups = false;
};

// What an ECDSA certificate needs from the client: the TLS 1.3 signature scheme and the
// named group of its curve (0x0403 / 23 for P-256).
struct EcdsaKeyNeeds {
  uint16_t tls13Scheme = 0;
  uint16_t group = 0;
};

bool isGrease(uint16_t value);

// Decodes the callback's ClientHello. Malformed extensions are treated as absent: BoringSSL
// itself rejects such a hello right after the callback.
ClientHelloSummary summarizeClientHello(const SSL_CLIENT_HELLO& hello);

// The highest version the client offered: the largest supported_versions entry when that
// extension is present, else the legacy_version field.
uint16_t maxOfferedVersion(const ClientHelloSummary& hello);

// The version the server will pick given its range, as BoringSSL does (highest common),
// or 0 when there is none (the handshake will fail with protocol_version).
uint16_t predictVersion(const ClientHelloSummary& hello, uint16_t serverMin, uint16_t serverMax);

// Whether a client negotiating `version` can be served an ECDSA certificate with `needs`.
// TLS 1.3: the curve's signature scheme is offered. TLS 1.2: an ECDHE_ECDSA suite, an ECDSA
// signature scheme (or no signature_algorithms at all, which implies SHA-1) and the curve.
// TLS 1.0/1.1: an ECDHE_ECDSA CBC suite and the curve (RFC 4492: no list means any curve).
bool clientSupportsEcdsa(const ClientHelloSummary& hello, uint16_t version,
                         const EcdsaKeyNeeds& needs);

}  // namespace smtpgate::tls
