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
#include <cstring>
#include <utility>

#include "tls/ex_data.h"

namespace smtpgate::tls {
namespace {

// SSL_write takes an int; large writes go in slices.
constexpr size_t kMaxWriteSlice = 1 << 20;
// A consumed input buffer larger than this is given back rather than kept for the next read:
// idle sessions should not hold the memory of their largest burst.
constexpr size_t kKeepCapacity = 16 * 1024;

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
  SSL_free(ssl_);  // also frees the BIO
}

// The BIO between BoringSSL and the engine's buffers (as h2o and Envoy do with their own
// buffers): no copy through a BIO pair, and nothing allocated while a connection is idle.
int TlsEngine::bioRead(BIO* bio, char* out, int len) {
  auto* self = static_cast<TlsEngine*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const size_t available = self->inboxPending();
  if (available == 0 && !self->borrowed_.empty() && len > 0) {
    const size_t n = std::min(self->borrowed_.size(), static_cast<size_t>(len));
    std::memcpy(out, self->borrowed_.data(), n);
    self->borrowed_.remove_prefix(n);
    return static_cast<int>(n);
  }
  if (available == 0 || len <= 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  const size_t n = std::min(available, static_cast<size_t>(len));
  std::memcpy(out, self->inbox_.data() + self->inboxPos_, n);
  self->inboxPos_ += n;
  if (self->inboxPos_ == self->inbox_.size()) {
    if (self->inbox_.capacity() > kKeepCapacity) {
      std::string().swap(self->inbox_);
    } else {
      self->inbox_.clear();
    }
    self->inboxPos_ = 0;
  }
  return static_cast<int>(n);
}

int TlsEngine::bioWrite(BIO* bio, const char* data, int len) {
  auto* self = static_cast<TlsEngine*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len > 0) {
    self->outbox_.append(data, static_cast<size_t>(len));
  }
  return len;
}

long TlsEngine::bioCtrl(BIO* bio, int cmd, long, void*) {
  auto* self = static_cast<TlsEngine*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(self->pendingCiphertext());
    case BIO_CTRL_WPENDING:
      return static_cast<long>(self->outbox_.size());
    default:
      return 0;
  }
}

void TlsEngine::init(bool server, const std::string& sni) {
  server_ = server;
  if (!context_ || context_->isServer() != server) {
    failed_ = true;
    error_ = server ? "a server engine needs a server context"
                    : "a client engine needs a client context";
    return;
  }
  static const BIO_METHOD* const kMethod = [] {
    BIO_METHOD* method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "smtpgate");
    if (method != nullptr) {
      BIO_meth_set_read(method, &TlsEngine::bioRead);
      BIO_meth_set_write(method, &TlsEngine::bioWrite);
      BIO_meth_set_ctrl(method, &TlsEngine::bioCtrl);
    }
    return method;
  }();
  ssl_ = SSL_new(context_->raw());
  BIO* bio = kMethod != nullptr ? BIO_new(kMethod) : nullptr;
  if (ssl_ == nullptr || bio == nullptr) {
    BIO_free(bio);
    ERR_clear_error();
    failed_ = true;
    error_ = "cannot allocate a TLS connection";
    return;
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_
  attachEngine(ssl_, this);
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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
  if (!verdict.sessionContext.empty() &&
      !SSL_set_session_id_context(
          ssl_, reinterpret_cast<const uint8_t*>(verdict.sessionContext.data()),
          verdict.sessionContext.size())) {
    ERR_clear_error();
    facts_.rejectedByHook = true;
    hookError_ = "handshake rejected: invalid session context from the ClientHello hook";
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
  if (inboxPos_ > 0 && inboxPos_ * 2 > inbox_.size()) {
    inbox_.erase(0, inboxPos_);  // now and then, not at every read (quadratic on big feeds)
    inboxPos_ = 0;
  }
  inbox_.append(bytes);
}

TlsEngine::Status TlsEngine::handshake() {
  if (failed_) {
    return Status::Error;
  }
  if (complete_) {
    return Status::Complete;
  }
  ERR_clear_error();
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    complete_ = true;
    collectFacts();
    return Status::Complete;
  }
  int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ) {
    return Status::WantRead;  // the BIO has handed over everything fed
  }
  return failure(err);
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
    ERR_clear_error();
    int n = SSL_read(ssl_, buf, sizeof buf);  // post-handshake messages may answer into outbox_
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) {
      return Status::Ok;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
      closed_ = true;
      return Status::Closed;
    }
    return failure(err);
  }
}

TlsEngine::Status TlsEngine::readPlaintext(std::string_view ciphertext, std::string& out) {
  if (failed_ || inboxPending() > 0) {
    feedCiphertext(ciphertext);  // bytes held from before go first: no shortcut
    return readPlaintext(out);
  }
  borrowed_ = ciphertext;
  Status status = readPlaintext(out);
  if (!borrowed_.empty()) {
    feedCiphertext(borrowed_);  // the caller's buffer is gone after this call
    borrowed_ = {};
  }
  return status;
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
    if (n <= 0) {
      return failure(SSL_get_error(ssl_, n));  // the BIO takes every byte: never WANT_WRITE
    }
    offset += static_cast<size_t>(n);
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
}

bool TlsEngine::hasCiphertext() const { return !outbox_.empty(); }

std::string TlsEngine::takeCiphertext() { return std::exchange(outbox_, std::string()); }

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
