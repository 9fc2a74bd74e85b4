#pragma once

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace smtpgate::tls {

class TlsContext;
class TlsEngine;

// Back pointers from BoringSSL objects to ours, for the callbacks (ex_data slots allocated once
// per process).
void attachEngine(SSL* ssl, TlsEngine* engine);
TlsEngine* engineOf(const SSL* ssl);
void attachContext(SSL_CTX* ctx, TlsContext* context);
TlsContext* contextOf(const SSL_CTX* ctx);

}  // namespace smtpgate::tls
