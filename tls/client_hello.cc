#include "tls/client_hello.h"

#include <openssl/bytestring.h>
#include <openssl/ssl.h>

#include <algorithm>

#include "tls/handshake_facts.h"

namespace smtpgate::tls {
namespace {

constexpr uint16_t kExtSupportedGroups = 0x000a;
constexpr uint16_t kExtSignatureAlgorithms = 0x000d;
constexpr uint16_t kExtSupportedVersions = 0x002b;

// The ECDHE_ECDSA suites the server enables (kServerCipherList in tls_context.cc): below TLS
// 1.2 the CBC ones with HMAC-SHA1, at TLS 1.2 also AEAD. Only these count: a client that offers
// an ECDSA suite the server does not enable (ECDHE-ECDSA-AES128-SHA256, found by sslscan) next
// to RSA ones must get the RSA certificate, or the handshake finds no shared cipher.
constexpr uint16_t kEcdsaSuitesLegacy[] = {0xC009, 0xC00A};
constexpr uint16_t kEcdsaSuitesTls12[] = {0xC009, 0xC00A, 0xC02B, 0xC02C, 0xCCA9};
constexpr uint16_t kEcdsaSchemesTls12[] = {SSL_SIGN_ECDSA_SHA1, SSL_SIGN_ECDSA_SECP256R1_SHA256,
                                           SSL_SIGN_ECDSA_SECP384R1_SHA384,
                                           SSL_SIGN_ECDSA_SECP521R1_SHA512};

bool contains(const std::vector<uint16_t>& list, uint16_t value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

template <size_t N>
bool containsAny(const std::vector<uint16_t>& list, const uint16_t (&values)[N]) {
  for (uint16_t v : values) {
    if (contains(list, v)) {
      return true;
    }
  }
  return false;
}

// Reads a list of u16 values; false on a malformed encoding.
bool readU16List(CBS* cbs, std::vector<uint16_t>& out) {
  while (CBS_len(cbs) > 0) {
    uint16_t value = 0;
    if (!CBS_get_u16(cbs, &value)) {
      return false;
    }
    if (!isGrease(value)) {
      out.push_back(value);
    }
  }
  return true;
}

bool extension(const SSL_CLIENT_HELLO& hello, uint16_t type, CBS* out) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!SSL_early_callback_ctx_extension_get(&hello, type, &data, &len)) {
    return false;
  }
  CBS_init(out, data, len);
  return true;
}

bool parseVersions(const SSL_CLIENT_HELLO& hello, std::vector<uint16_t>& out) {
  CBS ext, list;
  if (!extension(hello, kExtSupportedVersions, &ext)) {
    return false;
  }
  if (!CBS_get_u8_length_prefixed(&ext, &list) || CBS_len(&ext) != 0 || !readU16List(&list, out)) {
    out.clear();
    return false;
  }
  return true;
}

bool parseU16Extension(const SSL_CLIENT_HELLO& hello, uint16_t type, std::vector<uint16_t>& out) {
  CBS ext, list;
  if (!extension(hello, type, &ext)) {
    return false;
  }
  if (!CBS_get_u16_length_prefixed(&ext, &list) || CBS_len(&ext) != 0 || !readU16List(&list, out)) {
    out.clear();
    return false;
  }
  return true;
}

}  // namespace

bool isGrease(uint16_t value) {
  // 0x0A0A, 0x1A1A, ... 0xFAFA.
  return (value & 0x0f0f) == 0x0a0a && (value >> 8) == (value & 0xff);
}

ClientHelloSummary summarizeClientHello(const SSL_CLIENT_HELLO& hello) {
  ClientHelloSummary s;
  s.legacyVersion = hello.version;
  CBS suites;
  CBS_init(&suites, hello.cipher_suites, hello.cipher_suites_len);
  if (!readU16List(&suites, s.cipherSuites)) {
    s.cipherSuites.clear();
  }
  s.hasSupportedVersions = parseVersions(hello, s.supportedVersions);
  s.hasSignatureAlgorithms =
      parseU16Extension(hello, kExtSignatureAlgorithms, s.signatureAlgorithms);
  s.hasGroups = parseU16Extension(hello, kExtSupportedGroups, s.groups);
  return s;
}

uint16_t maxOfferedVersion(const ClientHelloSummary& hello) {
  if (!hello.hasSupportedVersions) {
    return hello.legacyVersion;
  }
  uint16_t best = 0;
  for (uint16_t v : hello.supportedVersions) {
    // Only real TLS versions count: pre-standard TLS 1.3 drafts (0x7fxx) and DTLS values
    // would otherwise look higher than TLS 1.3.
    if ((v >> 8) == 0x03) {
      best = std::max(best, v);
    }
  }
  return best != 0 ? best : hello.legacyVersion;
}

uint16_t predictVersion(const ClientHelloSummary& hello, uint16_t serverMin, uint16_t serverMax) {
  if (hello.hasSupportedVersions) {
    uint16_t best = 0;
    for (uint16_t v : hello.supportedVersions) {
      if (v >= serverMin && v <= serverMax) {
        best = std::max(best, v);
      }
    }
    return best;
  }
  // Without supported_versions a client never negotiates TLS 1.3.
  uint16_t ceiling = std::min<uint16_t>(serverMax, kTls12);
  uint16_t version = std::min(hello.legacyVersion, ceiling);
  return version >= serverMin ? version : 0;
}

bool clientSupportsEcdsa(const ClientHelloSummary& hello, uint16_t version,
                         const EcdsaKeyNeeds& needs) {
  if (version >= kTls13) {
    return contains(hello.signatureAlgorithms, needs.tls13Scheme);
  }
  bool curveOk = !hello.hasGroups || contains(hello.groups, needs.group);
  if (version == kTls12) {
    bool schemeOk =
        !hello.hasSignatureAlgorithms || containsAny(hello.signatureAlgorithms, kEcdsaSchemesTls12);
    return curveOk && schemeOk && containsAny(hello.cipherSuites, kEcdsaSuitesTls12);
  }
  return curveOk && containsAny(hello.cipherSuites, kEcdsaSuitesLegacy);
}

}  // namespace smtpgate::tls
