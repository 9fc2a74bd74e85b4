#include "tls/tls_engine.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <utility>

#include "tls/ex_data.h"

namespace smtpgate::tls {
namespace {

// Each direction of the BIO pair buffers this much; anything beyond waits in inbox_/outbox_.
constexpr size_t kPairBuffer = 64 * 1024;
// SSL_write takes an int; large writes go in slices.
constexpr size_t kMaxWriteSlice = 1 << 20;

std::string readable(const char* reason) {
  std::string text = reason != nullptr ? reason : "unknown error";
  for (char& c : text) {
    c = c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

std::string versionText(uint16_t v) {
  std::string label = versionLabel(v);
  return label.empty() ? "an unknown version" : "TLS " + label;
}

std::string hex(const uint8_t* data, size_t len) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
  return out;
}

std::string keyTypeOf(const CRYPTO_BUFFER* der) {
  const uint8_t* p = CRYPTO_BUFFER_data(der);
  bssl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(CRYPTO_BUFFER_len(der))));
  if (!cert) {
    ERR_clear_error();
    return "";
  }
  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(cert.get()));
  if (!key) {
    ERR_clear_error();
    return "";
  }
  switch (EVP_PKEY_id(key.get())) {
    case EVP_PKEY_EC:
      return "ECDSA";
    case EVP_PKEY_RSA:
      return "RSA";
    default:
      return "";
  }
}

}  // namespace

TlsEngine::TlsEngine(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {
  init(true, "");
}

TlsEngine::TlsEngine(std::shared_ptr<TlsContext> context, const std::string& sni)
    : context_(std::move(context)) {
  init(false, sni);
}

TlsEngine::~TlsEngine() {
  SSL_free(ssl_);  // also frees the SSL's end of the pair
  BIO_free(network_);
}

void TlsEngine::init(bool server, const std::string& sni) {
  server_ = server;
  if (!context_ || context_->isServer() != server) {
    failed_ = true;
    error_ = server ? "a server engine needs a server context"
                    : "a client engine needs a client context";
    return;
  }
  ssl_ = SSL_new(context_->raw());
  BIO* internal = nullptr;
  if (ssl_ == nullptr || !BIO_new_bio_pair(&internal, kPairBuffer, &network_, kPairBuffer)) {
    ERR_clear_error();
    failed_ = true;
    error_ = "cannot allocate a TLS connection";
    return;
  }
  SSL_set_bio(ssl_, internal, internal);  // one reference, owned by ssl_
  attachEngine(ssl_, this);
  // Partial writes let writePlaintext() drain the pair between records of a large write.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (server) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  facts_.maxOfferedVersion = SSL_get_max_proto_version(ssl_);
  if (!sni.empty()) {
    facts_.sni = sni;
    if (!SSL_set_tlsext_host_name(ssl_, sni.c_str())) {
      ERR_clear_error();
      failed_ = true;
      error_ = "invalid server name \"" + sni + "\"";
    }
  }
}

void TlsEngine::setClientHelloHook(ClientHelloHook hook) {
  if (server_) {
    hook_ = std::move(hook);
  }
}

bool TlsEngine::runClientHelloHook() {
  if (!hook_) {
    return true;
  }
  ClientHelloVerdict verdict;
  try {
    verdict = hook_(facts_);
  } catch (...) {
    // An exception must not unwind through BoringSSL's C frames.
    facts_.rejectedByHook = true;
    hookError_ = "handshake rejected: the ClientHello hook failed";
    return false;
  }
  if (verdict.reject) {
    facts_.rejectedByHook = true;
    hookError_ = "handshake rejected by the ClientHello hook";
    return false;
  }
  uint16_t current = SSL_get_min_proto_version(ssl_);
  if (verdict.minVersion == 0 || verdict.minVersion <= current) {
    return true;
  }
  uint16_t max = SSL_get_max_proto_version(ssl_);
  // An empty range would make BoringSSL fail without any alert: refuse clearly instead.
  if (verdict.minVersion > max || !SSL_set_min_proto_version(ssl_, verdict.minVersion)) {
    ERR_clear_error();
    facts_.rejectedByHook = true;
    char wire[8];
    std::snprintf(wire, sizeof wire, "0x%04x", verdict.minVersion);
    std::string asked =
        versionLabel(verdict.minVersion).empty() ? wire : versionText(verdict.minVersion);
    hookError_ = "handshake rejected: the ClientHello hook asked for at least " + asked +
                 ", above this endpoint's maximum " + versionText(max);
    return false;
  }
  facts_.hookMinVersion = verdict.minVersion;
  return true;
}

void TlsEngine::feedCiphertext(std::string_view bytes) {
  if (failed_ || bytes.empty()) {
    return;
  }
  inbox_.append(bytes);
  pumpIn();
}

size_t TlsEngine::pumpIn() {
  size_t moved = 0;
  while (inboxPending()) {
    size_t room = BIO_ctrl_get_write_guarantee(network_);
    if (room == 0) {
      break;
    }
    size_t n = std::min({room, inbox_.size() - inboxPos_, size_t{INT_MAX}});
    int written = BIO_write(network_, inbox_.data() + inboxPos_, static_cast<int>(n));
    if (written <= 0) {
      break;
    }
    inboxPos_ += static_cast<size_t>(written);
    moved += static_cast<size_t>(written);
  }
  if (!inboxPending()) {
    inbox_.clear();
    inboxPos_ = 0;
  } else if (inboxPos_ > kPairBuffer && inboxPos_ * 2 > inbox_.size()) {
    // Compact now and then rather than erasing at every step (quadratic on big feeds).
    inbox_.erase(0, inboxPos_);
    inboxPos_ = 0;
  }
  return moved;
}

void TlsEngine::pumpOut() {
  if (network_ == nullptr) {
    return;
  }
  for (;;) {
    size_t pending = BIO_ctrl_pending(network_);
    if (pending == 0) {
      return;
    }
    size_t n = std::min(pending, size_t{INT_MAX});
    size_t old = outbox_.size();
    outbox_.resize(old + n);
    int got = BIO_read(network_, outbox_.data() + old, static_cast<int>(n));
    if (got <= 0) {
      outbox_.resize(old);
      return;
    }
    outbox_.resize(old + static_cast<size_t>(got));
  }
}

TlsEngine::Status TlsEngine::handshake() {
  if (failed_) {
    return Status::Error;
  }
  if (complete_) {
    return Status::Complete;
  }
  for (;;) {
    pumpIn();
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_);
    int err = ret == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, ret);
    pumpOut();
    if (ret == 1) {
      complete_ = true;
      collectFacts();
      return Status::Complete;
    }
    if (err == SSL_ERROR_WANT_READ) {
      // The pair may have been full: feed the rest before asking the caller for more.
      if (inboxPending() && pumpIn() > 0) {
        continue;
      }
      return Status::WantRead;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      continue;  // pumpOut() made room
    }
    return failure(err);
  }
}

TlsEngine::Status TlsEngine::readPlaintext(std::string& out) {
  if (failed_) {
    return Status::Error;
  }
  if (closed_) {
    return Status::Closed;
  }
  if (!complete_) {
    Status s = handshake();
    if (s != Status::Complete) {
      return s == Status::Error ? Status::Error : Status::Ok;
    }
  }
  char buf[16384];
  for (;;) {
    pumpIn();
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);
    int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    pumpOut();  // post-handshake messages (tickets, key updates) may answer
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (err == SSL_ERROR_WANT_READ) {
      if (inboxPending() && pumpIn() > 0) {
        continue;
      }
      return Status::Ok;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      continue;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
      closed_ = true;
      return Status::Closed;
    }
    return failure(err);
  }
}

TlsEngine::Status TlsEngine::writePlaintext(std::string_view bytes) {
  if (failed_) {
    return Status::Error;
  }
  if (!complete_) {
    error_ = "cannot write application data before the handshake completes";
    return Status::Error;
  }
  size_t offset = 0;
  while (offset < bytes.size()) {
    size_t slice = std::min(bytes.size() - offset, kMaxWriteSlice);
    ERR_clear_error();
    int n = SSL_write(ssl_, bytes.data() + offset, static_cast<int>(slice));
    int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    pumpOut();
    if (n > 0) {
      offset += static_cast<size_t>(n);
      continue;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      continue;  // the pair was full; pumpOut() emptied it, retry the same slice
    }
    return failure(err);
  }
  return Status::Ok;
}

void TlsEngine::shutdown() {
  // close_notify only makes sense on an established connection; BoringSSL refuses it mid-handshake.
  if (failed_ || !complete_ || ssl_ == nullptr) {
    return;
  }
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  pumpOut();
}

bool TlsEngine::hasCiphertext() const {
  return !outbox_.empty() || (network_ != nullptr && BIO_ctrl_pending(network_) > 0);
}

std::string TlsEngine::takeCiphertext() {
  pumpOut();
  return std::exchange(outbox_, std::string());
}

TlsEngine::Status TlsEngine::failure(int sslError) {
  failed_ = true;
  uint32_t code = ERR_get_error();  // the oldest entry names the root cause
  ERR_clear_error();
  if (facts_.rejectedByHook) {
    error_ = hookError_;  // BoringSSL only knows "connection rejected"
  } else if (code == 0) {
    error_ = sslError == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream"
                                           : "TLS error " + std::to_string(sslError);
  } else if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
             ERR_GET_REASON(code) == SSL_R_UNSUPPORTED_PROTOCOL) {
    error_ = "unsupported protocol version";
    if (server_ && facts_.maxOfferedVersion != 0) {
      // The hook's minimum, when it raised one, is what this handshake was held to.
      uint16_t minVersion = std::max(context_->minVersion(), facts_.hookMinVersion);
      error_ += ": the client offered at most " + versionText(facts_.maxOfferedVersion) +
                ", this endpoint accepts " + versionText(minVersion) + " to " +
                versionText(context_->maxVersion());
    }
  } else {
    std::string reason = readable(ERR_reason_error_string(code));
    // "tlsv1 alert protocol version": say plainly that the peer refused.
    for (const char* prefix : {"tlsv1 alert ", "sslv3 alert "}) {
      if (reason.rfind(prefix, 0) == 0) {
        reason = "peer sent alert: " + reason.substr(std::string_view(prefix).size());
        break;
      }
    }
    error_ = reason;
  }
  pumpOut();  // keep the alert BoringSSL wrote, for the caller to send
  return Status::Error;
}

void TlsEngine::collectFacts() {
  facts_.version = static_cast<uint16_t>(SSL_version(ssl_));
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) {
    facts_.cipher = SSL_CIPHER_standard_name(cipher);
    facts_.cipherOpenSsl = SSL_CIPHER_get_name(cipher);
    facts_.cipherBits = SSL_CIPHER_get_bits(cipher, nullptr);
  }
  facts_.resumed = SSL_session_reused(ssl_) != 0;
  const STACK_OF(CRYPTO_BUFFER)* peer = SSL_get0_peer_certificates(ssl_);
  const CRYPTO_BUFFER* leaf =
      peer != nullptr && sk_CRYPTO_BUFFER_num(peer) > 0 ? sk_CRYPTO_BUFFER_value(peer, 0) : nullptr;
  if (server_) {
    if (facts_.sni.empty()) {
      const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
      facts_.sni = name != nullptr ? name : "";
    }
    if (leaf != nullptr) {
      uint8_t digest[SHA256_DIGEST_LENGTH];
      SHA256(CRYPTO_BUFFER_data(leaf), CRYPTO_BUFFER_len(leaf), digest);
      facts_.clientCertSha256 = hex(digest, sizeof digest);
    }
  } else if (leaf != nullptr) {
    // The client side reports which certificate the server chose.
    facts_.certificateKeyType = keyTypeOf(leaf);
  }
}

}  // namespace smtpgate::tls
