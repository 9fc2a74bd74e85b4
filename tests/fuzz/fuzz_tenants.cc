// libFuzzer target: the tenants loader (gateway/tenants_file.h parseTenants) and its writer.
//
// Input: a tenants document (JSON). Checked: no exception escapes; a refused document leaves
// the directory untouched and says why with valid pointers; an accepted one is written back by
// tenantsToJson() into a document that parseTenants() accepts and that writes back identically
// (the admin API rewrites the file this way: a round trip must not change or lose anything).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/tenants_file.h"
#include "tests/fuzz/fuzz_common.h"

namespace {
constexpr const char* kTarget = "fuzz_tenants";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256 * 1024) {
    return -1;
  }
  const std::string text(reinterpret_cast<const char*>(data), size);

  // A directory that is already in force: a refused document must leave it as it was.
  smtpgate::policy::TenantDirectory directory;
  std::vector<smtpgate::ConfigError> errors;
  const std::string before =
      R"({"tenants": [{"id": "keep", "domains": ["keep.example"], "allow_legacy_tls_clients": true}]})";
  FUZZ_CHECK(smtpgate::parseTenants(before, directory, errors) && errors.empty());
  const std::string inForce = smtpgate::tenantsToJson(directory);

  const bool ok = smtpgate::parseTenants(text, directory, errors);
  if (!ok) {
    FUZZ_CHECK(!errors.empty());
    FUZZ_CHECK(smtpgate::tenantsToJson(directory) == inForce);
    for (const smtpgate::ConfigError& e : errors) {
      FUZZ_CHECK(!e.message.empty(), e.str());
      FUZZ_CHECK(e.pointer.empty() || e.pointer[0] == '/', e.str());
    }
    return 0;
  }
  FUZZ_CHECK(errors.empty());

  const std::string written = smtpgate::tenantsToJson(directory);
  smtpgate::policy::TenantDirectory reread;
  std::vector<smtpgate::ConfigError> rereadErrors;
  if (!smtpgate::parseTenants(written, reread, rereadErrors)) {
    std::string why;
    for (const auto& e : rereadErrors) why += e.str() + "\n";
    smtpgate::fuzz::fail(kTarget, "tenantsToJson() wrote a document parseTenants() refuses",
                         written + "\n" + why);
  }
  FUZZ_CHECK(reread.all().size() == directory.all().size(), written);
  FUZZ_CHECK(smtpgate::tenantsToJson(reread) == written, written);
  return 0;
}
