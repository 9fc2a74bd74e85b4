// createServer/createClient refuse bad input with a sentence that names the file.

#include <catch2/catch.hpp>

#include "tests/tls/tls_fixtures.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;

namespace {

std::string createError(const std::vector<CertificateSource>& certs, uint16_t minVersion = kTls12,
                        uint16_t maxVersion = kTls13) {
  ServerContextOptions options;
  options.minVersion = minVersion;
  options.maxVersion = maxVersion;
  options.certificates = certs;
  std::string error;
  auto ctx = TlsContext::createServer(options, error);
  CHECK(ctx == nullptr);
  return error;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a valid certificate loads and the context reports its settings") {
  ServerContextOptions options;
  options.minVersion = kTls10;
  options.maxVersion = kTls13;
  options.certificates = {ecdsaMail(), rsaMail()};
  std::string error;
  auto ctx = TlsContext::createServer(options, error);
  REQUIRE(ctx);
  CHECK(error.empty());
  CHECK(ctx->isServer());
  CHECK(ctx->minVersion() == kTls10);
  CHECK(ctx->maxVersion() == kTls13);
  CHECK(ctx->raw() != nullptr);
}

TEST_CASE("a missing certificate or key file is named") {
  std::string missing = tempDir().path() + "/does-not-exist.pem";
  auto error = createError({{missing, ecdsaMail().keyFile}});
  INFO(error);
  CHECK(has(error, missing));
  CHECK(has(error, "No such file"));

  error = createError({{ecdsaMail().certFile, missing}});
  INFO(error);
  CHECK(has(error, "key file " + missing));
}

TEST_CASE("a file that is not PEM is named, with what was expected") {
  std::string garbage = tempDir().write("garbage.crt", "this is not a certificate\n");
  auto error = createError({{garbage, ecdsaMail().keyFile}});
  INFO(error);
  CHECK(has(error, garbage));
  CHECK(has(error, "no PEM certificate"));

  std::string broken = tempDir().write(
      "broken.crt", "-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n");
  error = createError({{broken, ecdsaMail().keyFile}});
  INFO(error);
  CHECK(has(error, broken));
  CHECK(has(error, "not valid PEM"));

  // A certificate where the key should be.
  error = createError({{ecdsaMail().certFile, ecdsaMail().certFile}});
  INFO(error);
  CHECK(has(error, "key file " + ecdsaMail().certFile));
  CHECK(has(error, "no PEM private key"));
}

TEST_CASE("a key that does not match its certificate is refused") {
  const auto& other = testCert(KeyType::Ecdsa, {"other.example.com"}).files;
  auto error = createError({{ecdsaMail().certFile, other.keyFile}});
  INFO(error);
  CHECK(has(error, other.keyFile));
  CHECK(has(error, ecdsaMail().certFile));
  CHECK(has(error, "does not match"));

  // RSA certificate with an ECDSA key.
  error = createError({{rsaMail().certFile, ecdsaMail().keyFile}});
  INFO(error);
  CHECK(has(error, "does not match"));

  // The second certificate is checked as well as the first.
  error = createError({ecdsaMail(), {rsaMail().certFile, other.keyFile}});
  INFO(error);
  CHECK(has(error, rsaMail().certFile));
}

TEST_CASE("chain and key in one file load (leaf first)") {
  const auto& cert = testCert(KeyType::Ecdsa, {"combined.example.com"});
  std::string combined =
      tempDir().write("combined.pem", cert.pem.keyPem + cert.pem.certPem + cert.pem.certPem);
  ServerContextOptions options;
  options.certificates = {{combined, combined}};
  std::string error;
  CHECK(TlsContext::createServer(options, error));
  CHECK(error.empty());
}

TEST_CASE("no certificates or an impossible version range are refused") {
  CHECK(has(createError({}), "certificate"));
  CHECK(has(createError({ecdsaMail()}, kTls13, kTls12), "version"));
  CHECK(has(createError({ecdsaMail()}, 0x0300, kTls12), "version"));

  ClientContextOptions client;
  client.cipherList = "NOT-A-CIPHER";
  std::string error;
  CHECK_FALSE(TlsContext::createClient(client, error));
  CHECK(has(error, "NOT-A-CIPHER"));
  client.cipherList.clear();
  client.maxVersion = 0x0305;
  CHECK_FALSE(TlsContext::createClient(client, error));
  CHECK(has(error, "version"));
}
