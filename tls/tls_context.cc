#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <cstring>

#include "tls/certificate_store.h"
#include "tls/client_hello.h"
#include "tls/ex_data.h"
#include "tls/tls_engine.h"

namespace smtpgate::tls {

// Equal-preference groups ([a|b]) let clients without AES hardware pick ChaCha20 while the
// server order still applies otherwise.
const char* const kServerCipherList =
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]:"
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "AES128-SHA:AES256-SHA";

namespace {

// TLS 1.2 and up only: forward secrecy and AEAD. TLS 1.3 suites are not configurable.
const char* const kModernCipherList =
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]:"
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

bool validVersion(uint16_t v) { return v >= kTls10 && v <= kTls13; }

bool checkVersions(uint16_t minVersion, uint16_t maxVersion, std::string& error) {
  if (!validVersion(minVersion) || !validVersion(maxVersion) || minVersion > maxVersion) {
    char text[96];
    std::snprintf(text, sizeof text, "invalid TLS version range 0x%04x..0x%04x", minVersion,
                  maxVersion);
    error = text;
    return false;
  }
  return true;
}

// We never judge certificates: the gateway's clients are identified by hash, and the test
// client talks to self-signed servers.
ssl_verify_result_t acceptAnyCertificate(SSL*, uint8_t*) { return ssl_verify_ok; }

// ALPACA (cross-protocol attacks, alpaca-attack.com): a client that names application protocols
// and not "smtp" is talking to the wrong server (a browser lured here for HTTPS), so the
// handshake fails with no_application_protocol. Clients without ALPN, as nearly every mail
// client, are not affected; "smtp" is selected when offered.
int selectAlpn(SSL*, const uint8_t** out, uint8_t* outLen, const uint8_t* in, unsigned inLen,
               void*) {
  static constexpr uint8_t kSmtp[] = {'s', 'm', 't', 'p'};
  for (unsigned i = 0; i < inLen;) {
    const unsigned len = in[i];
    if (i + 1 + len > inLen) {
      break;
    }
    if (len == sizeof kSmtp && std::memcmp(in + i + 1, kSmtp, sizeof kSmtp) == 0) {
      *out = in + i + 1;
      *outLen = static_cast<uint8_t>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

struct TlsContext::Impl {
  CertificateStore store;
};

namespace {

// Runs on the raw ClientHello, before version negotiation: records what the client offered
// (also for handshakes that then fail), runs the engine's hook, then picks the certificate by
// SNI and key type for the version the (possibly raised) range will give.
ssl_select_cert_result_t selectCertificate(const SSL_CLIENT_HELLO* hello) {
  SSL* ssl = hello->ssl;
  TlsContext* context = contextOf(SSL_get_SSL_CTX(ssl));
  if (context == nullptr || context->impl() == nullptr) {
    return ssl_select_cert_error;
  }
  ClientHelloSummary summary = summarizeClientHello(*hello);
  const char* servername = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  std::string sni = servername != nullptr ? servername : "";
  uint16_t contextMin = SSL_get_min_proto_version(ssl);
  uint16_t maxVersion = SSL_get_max_proto_version(ssl);

  TlsEngine* engine = engineOf(ssl);
  if (engine != nullptr) {
    HandshakeFacts& facts = engine->mutableFacts();
    facts.sni = sni;
    facts.maxOfferedVersion = maxOfferedVersion(summary);
    // The hook may raise the SSL's minimum: BoringSSL reads the version range only after this
    // callback returns, so the raised minimum applies to this very handshake.
    if (!engine->runClientHelloHook()) {
      return ssl_select_cert_error;  // handshake_failure alert
    }
  }
  uint16_t minVersion = SSL_get_min_proto_version(ssl);
  uint16_t version = predictVersion(summary, minVersion, maxVersion);
  const LoadedCertificate* cert = context->impl()->store.select(sni, summary, version);

  if (engine != nullptr) {
    HandshakeFacts& facts = engine->mutableFacts();
    facts.versionRefusedByHook = version == 0 && minVersion > contextMin &&
                                 predictVersion(summary, contextMin, maxVersion) != 0;
    if (cert != nullptr) {
      facts.certificateKeyType = cert->keyType == KeyType::Ecdsa ? "ECDSA" : "RSA";
    }
  }
  if (cert == nullptr || !SSL_set_chain_and_key(ssl, cert->chainView.data(), cert->chainView.size(),
                                                cert->key.get(), nullptr)) {
    return ssl_select_cert_error;
  }
  return ssl_select_cert_success;
}

}  // namespace

TlsContext::TlsContext(SSL_CTX* ctx, bool server) : ctx_(ctx), server_(server) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<TlsContext> TlsContext::createServer(const ServerContextOptions& options,
                                                     std::string& error) {
  if (!checkVersions(options.minVersion, options.maxVersion, error)) {
    return nullptr;
  }
  if (options.certificates.empty()) {
    error = "a TLS server needs at least one certificate";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  for (const auto& source : options.certificates) {
    if (!impl->store.addFromFiles(source, error)) {
      return nullptr;
    }
  }

  SSL_CTX* raw = SSL_CTX_new(TLS_method());
  if (raw == nullptr) {
    error = "cannot allocate a TLS context";
    return nullptr;
  }
  std::shared_ptr<TlsContext> context(new TlsContext(raw, true));
  context->minVersion_ = options.minVersion;
  context->maxVersion_ = options.maxVersion;
  context->impl_ = std::move(impl);

  const char* ciphers = options.minVersion < kTls12 ? kServerCipherList : kModernCipherList;
  if (!SSL_CTX_set_min_proto_version(raw, options.minVersion) ||
      !SSL_CTX_set_max_proto_version(raw, options.maxVersion) ||
      !SSL_CTX_set_strict_cipher_list(raw, ciphers)) {
    ERR_clear_error();
    error = "cannot configure TLS versions or ciphers";
    return nullptr;
  }
  SSL_CTX_set_options(raw, SSL_OP_CIPHER_SERVER_PREFERENCE);
  // The session cache and ticket keys stay per SSL_CTX (BoringSSL's defaults): a session of
  // one endpoint never resumes on another.
  static const uint8_t kSessionContext[] = "smtpgate";
  SSL_CTX_set_session_id_context(raw, kSessionContext, sizeof kSessionContext - 1);
  if (options.requestClientCertificate) {
    SSL_CTX_set_custom_verify(raw, SSL_VERIFY_PEER, acceptAnyCertificate);
  }
  SSL_CTX_set_alpn_select_cb(raw, selectAlpn, nullptr);
  attachContext(raw, context.get());
  SSL_CTX_set_select_certificate_cb(raw, selectCertificate);
  return context;
}

std::shared_ptr<TlsContext> TlsContext::createClient(const ClientContextOptions& options,
                                                     std::string& error) {
  if (!checkVersions(options.minVersion, options.maxVersion, error)) {
    return nullptr;
  }
  SSL_CTX* raw = SSL_CTX_new(TLS_method());
  if (raw == nullptr) {
    error = "cannot allocate a TLS context";
    return nullptr;
  }
  std::shared_ptr<TlsContext> context(new TlsContext(raw, false));
  context->minVersion_ = options.minVersion;
  context->maxVersion_ = options.maxVersion;
  context->impl_ = std::make_unique<Impl>();
  if (!SSL_CTX_set_min_proto_version(raw, options.minVersion) ||
      !SSL_CTX_set_max_proto_version(raw, options.maxVersion)) {
    ERR_clear_error();
    error = "cannot configure TLS versions";
    return nullptr;
  }
  // BoringSSL's default list already carries the ECDHE and RSA CBC-SHA suites TLS 1.0 needs.
  if (!options.cipherList.empty() &&
      !SSL_CTX_set_strict_cipher_list(raw, options.cipherList.c_str())) {
    ERR_clear_error();
    error = "invalid cipher list \"" + options.cipherList + "\"";
    return nullptr;
  }
  SSL_CTX_set_custom_verify(raw, SSL_VERIFY_PEER, acceptAnyCertificate);
  attachContext(raw, context.get());
  return context;
}

}  // namespace smtpgate::tls
