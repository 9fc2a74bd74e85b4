#pragma once

#include <string>

#include "gateway/config.h"

namespace smtpgate {

// First-start set-up of the embedded default (SPEC section 9): under the config's state
// directory, creates what is missing — tls/ecdsa.{pem,key} and tls/rsa.{pem,key} (self-signed
// for the hostname and localhost; RSA for old devices), the users file with one demo user and
// demo-credentials.txt (mode 0600). Existing files are never overwritten.
// Returns "" or an error sentence. `banner` receives the lines to print on start.
std::string prepareEmbeddedDefault(const Config& config, std::string& banner);

}  // namespace smtpgate
