#include "tls/ex_data.h"

#include <openssl/ssl.h>

namespace smtpgate::tls {
namespace {

// Function-local statics: allocated once, thread-safe, before any callback can run.
int engineIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int contextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

void attachEngine(SSL* ssl, TlsEngine* engine) { SSL_set_ex_data(ssl, engineIndex(), engine); }

TlsEngine* engineOf(const SSL* ssl) {
  return static_cast<TlsEngine*>(SSL_get_ex_data(ssl, engineIndex()));
}

void attachContext(SSL_CTX* ctx, TlsContext* context) {
  SSL_CTX_set_ex_data(ctx, contextIndex(), context);
}

TlsContext* contextOf(const SSL_CTX* ctx) {
  return static_cast<TlsContext*>(SSL_CTX_get_ex_data(ctx, contextIndex()));
}

}  // namespace smtpgate::tls
