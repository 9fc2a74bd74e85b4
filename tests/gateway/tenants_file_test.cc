#include "gateway/tenants_file.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace smtpgate;
using Kind = policy::TenantException::Kind;

namespace {

std::vector<std::string> errorsOf(const std::string& json) {
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  bool ok = parseTenants(json, directory, errors);
  CHECK(ok == errors.empty());
  std::vector<std::string> out;
  for (const auto& e : errors) {
    out.push_back(e.str());
  }
  return out;
}

std::vector<std::string> one(const std::string& message) { return {message}; }

// One tenant "contoso" with the given exceptions (a JSON array's inside).
std::string withExceptions(const std::string& exceptions) {
  return R"({"tenants": [{"id": "contoso", "domains": ["contoso.com"], "exceptions": [)" +
         exceptions + "]}]}";
}

policy::ClientIdentity fromIp(const std::string& ip) { return {ip, "", "", ""}; }

const char* const kExample = R"({"tenants": [
  {"id": "contoso", "domains": ["Contoso.com", "contoso.org"],
   "allow_legacy_tls_clients": false,
   "exceptions": [{"client": "192.0.2.10/32", "reason": "scanner, 3rd floor", "expires": "2027-03-31"},
                  {"user": "Printer@Contoso.com"},
                  {"ehlo": "Scanner.Contoso.com", "expires": "2027-03-31T18:00:00+02:00"},
                  {"cert_sha256": "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"},
                  {"client": "2001:db8::/32", "reason": "Zürich office"}]},
  {"id": "fabrikam", "domains": ["fabrikam.com"], "allow_legacy_tls_clients": true},
  {"id": "tailspin_toys.eu-1", "domains": ["tailspintoys.eu"], "exceptions": []}
]})";

constexpr int64_t kEndOf20270331 = 1806537600;    // 2027-04-01T00:00:00Z
constexpr int64_t k20270331At1600Z = 1806508800;  // 2027-03-31T16:00:00Z

}  // namespace

TEST_CASE("tenants: a valid file gives a working directory") {
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(kExample, directory, errors));
  REQUIRE(errors.empty());
  REQUIRE(directory.all().size() == 3);

  const policy::Tenant* contoso = directory.forDomain("CONTOSO.COM");
  REQUIRE(contoso != nullptr);
  CHECK(contoso->id == "contoso");
  CHECK(contoso->domains == std::vector<std::string>{"contoso.com", "contoso.org"});
  CHECK_FALSE(contoso->allowLegacyTlsClients);
  CHECK(directory.forDomain("contoso.org.") == contoso);
  CHECK(directory.forDomain("example.com") == nullptr);
  CHECK(directory.forDomain("sub.contoso.com") == nullptr);
  REQUIRE(directory.byId("fabrikam") != nullptr);
  CHECK(directory.byId("fabrikam")->allowLegacyTlsClients);
  CHECK(directory.byId("fabrikam")->exceptions.empty());
  CHECK(directory.byId("tailspin_toys.eu-1") == directory.forDomain("tailspintoys.eu"));

  REQUIRE(contoso->exceptions.size() == 5);
  const auto& e = contoso->exceptions;
  CHECK(e[0].kind == Kind::Client);
  CHECK(e[0].reason == "scanner, 3rd floor");
  REQUIRE(e[0].expires.has_value());
  CHECK(*e[0].expires == kEndOf20270331);  // through the end of the day, UTC
  CHECK(e[1].kind == Kind::User);
  CHECK(e[1].value == "printer@contoso.com");
  CHECK_FALSE(e[1].expires.has_value());
  CHECK(e[2].kind == Kind::Ehlo);
  CHECK(e[2].value == "scanner.contoso.com");
  CHECK(*e[2].expires == k20270331At1600Z);
  CHECK(e[3].kind == Kind::CertSha256);
  CHECK(e[3].value == "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  CHECK(e[4].reason == "Zürich office");

  // Matching, including the expiry.
  const int64_t before = kEndOf20270331 - 1;
  CHECK(contoso->matchingException(fromIp("192.0.2.10"), before) == &e[0]);
  CHECK(contoso->matchingException(fromIp("::ffff:192.0.2.10"), before) == &e[0]);
  CHECK(contoso->matchingException(fromIp("192.0.2.10"), kEndOf20270331) == nullptr);
  CHECK(contoso->matchingException(fromIp("192.0.2.11"), before) == nullptr);
  CHECK(contoso->matchingException({"198.51.100.1", "printer@contoso.com", "", ""}, before) ==
        &e[1]);
  CHECK(contoso->matchingException({"198.51.100.1", "", "SCANNER.contoso.com", ""},
                                   k20270331At1600Z - 1) == &e[2]);
  CHECK(contoso->matchingException({"198.51.100.1", "", "scanner.contoso.com", ""},
                                   k20270331At1600Z) == nullptr);
  CHECK(contoso->matchingException({"198.51.100.1", "", "", e[3].value}, before) == &e[3]);
  CHECK(contoso->matchingException(fromIp("2001:db8:1::25"), kEndOf20270331 * 2) == &e[4]);
}

TEST_CASE("tenants: document structure") {
  CHECK(errorsOf(R"({"tenants": []})").empty());
  CHECK(errorsOf("[]") == one("the tenants file must be a JSON object"));
  CHECK(errorsOf("{}") == one(R"("tenants" is required)"));
  CHECK(errorsOf(R"({"tenants": {}})") == one("/tenants: must be an array"));
  CHECK(errorsOf(R"({"tenants": [], "version": 2})") == one("/version: unknown key"));
  CHECK(errorsOf(R"({"tenants": ["contoso"]})") == one("/tenants/0: must be an object"));
  CHECK(errorsOf(R"({"tenants": [{}]})") ==
        std::vector<std::string>{R"(/tenants/0: "id" is required)",
                                 R"(/tenants/0: "domains" is required)"});
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "domains": ["a.com"], "name": "A"}]})") ==
        one("/tenants/0/name: unknown key"));
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "id": "b", "domains": ["a.com"]}]})") ==
        one("/tenants/0/id: duplicate key"));
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "domains": ["a.com"],
                                  "allow_legacy_tls_clients": "yes"}]})") ==
        one("/tenants/0/allow_legacy_tls_clients: must be true or false"));
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "domains": ["a.com"], "exceptions": {}}]})") ==
        one("/tenants/0/exceptions: must be an array"));
  CHECK(errorsOf(withExceptions("7")) == one("/tenants/0/exceptions/0: must be an object"));
}

TEST_CASE("tenants: invalid JSON is one error with line and column") {
  auto errors = errorsOf("{\"tenants\": [\n  {\"id\": \"a\",}\n]}");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("invalid JSON at line 2, column 14: ", 0) == 0);
  errors = errorsOf("");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("invalid JSON at line 1, column 1: ", 0) == 0);
}

TEST_CASE("tenants: ids are unique names") {
  const std::string idMessage = R"(must be 1 to 64 letters, digits, ".", "_" or "-")";
  for (const std::string& bad : {std::string(""), std::string("con toso"), std::string("a/b"),
                                 std::string("é"), std::string(65, 'a')}) {
    INFO(bad);
    CHECK(errorsOf(R"({"tenants": [{"id": ")" + bad + R"(", "domains": ["a.com"]}]})") ==
          one("/tenants/0/id: " + idMessage));
  }
  CHECK(
      errorsOf(R"({"tenants": [{"id": ")" + std::string(64, 'a') + R"(", "domains": ["a.com"]}]})")
          .empty());
  CHECK(errorsOf(R"({"tenants": [{"id": 5, "domains": ["a.com"]}]})") ==
        one("/tenants/0/id: must be a string"));
  CHECK(errorsOf(R"({"tenants": [{"id": "contoso", "domains": ["a.com"]},
                                 {"id": "fabrikam", "domains": ["b.com"]},
                                 {"id": "Contoso", "domains": ["c.com"]}]})") ==
        one(R"(/tenants/2/id: duplicate tenant id "Contoso" (also /tenants/0/id))"));
}

TEST_CASE("tenants: domains are DNS names, each in one tenant only") {
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "domains": []}]})") ==
        one("/tenants/0/domains: must list at least one domain"));
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "domains": "a.com"}]})") ==
        one("/tenants/0/domains: must be an array"));
  CHECK(errorsOf(R"({"tenants": [{"id": "a", "domains": ["a.com", 5, "a_b.com", "b..com",
                                                          "c.com."]}]})") ==
        std::vector<std::string>{"/tenants/0/domains/1: must be a string",
                                 "/tenants/0/domains/2: must be a DNS name",
                                 "/tenants/0/domains/3: must be a DNS name",
                                 "/tenants/0/domains/4: must be a DNS name"});
  // Across tenants (case-insensitively), and within one.
  CHECK(errorsOf(R"({"tenants": [{"id": "contoso", "domains": ["contoso.com"]},
                                 {"id": "fabrikam", "domains": ["contoso.com"]}]})") ==
        one(R"(/tenants/1/domains/0: contoso.com already belongs to tenant "contoso" )"
            "(/tenants/0/domains/0)"));
  CHECK(errorsOf(R"({"tenants": [{"id": "contoso", "domains": ["a.com", "Contoso.COM"]},
                                 {"id": "fabrikam", "domains": ["b.com", "contoso.com"]}]})") ==
        one(R"(/tenants/1/domains/1: contoso.com already belongs to tenant "contoso" )"
            "(/tenants/0/domains/1)"));
  CHECK(
      errorsOf(R"({"tenants": [{"id": "contoso", "domains": ["contoso.com", "CONTOSO.com"]}]})") ==
      one("/tenants/0/domains/1: contoso.com is listed twice (also /tenants/0/domains/0)"));
  // The owner's id may come after its domains in the document; without a valid id the owner is
  // named by its pointer.
  CHECK(errorsOf(R"({"tenants": [{"domains": ["a.com"], "id": "first"},
                                 {"id": "second", "domains": ["a.com"]}]})") ==
        one(R"(/tenants/1/domains/0: a.com already belongs to tenant "first" )"
            "(/tenants/0/domains/0)"));
  CHECK(errorsOf(R"({"tenants": [{"id": "not valid", "domains": ["a.com"]},
                                 {"id": "second", "domains": ["a.com"]}]})") ==
        std::vector<std::string>{
            R"(/tenants/0/id: must be 1 to 64 letters, digits, ".", "_" or "-")",
            "/tenants/1/domains/0: a.com already belongs to /tenants/0 (/tenants/0/domains/0)"});
}

TEST_CASE("tenants: an exception has exactly one subject") {
  const std::string message =
      R"(/tenants/0/exceptions/0: exactly one of "client", "user", "ehlo", "cert_sha256" is required)";
  CHECK(errorsOf(withExceptions(R"({})")) == one(message));
  CHECK(errorsOf(withExceptions(R"({"reason": "forgot the subject"})")) == one(message));
  CHECK(errorsOf(withExceptions(R"({"client": "192.0.2.1", "user": "a@contoso.com"})")) ==
        one(message));
  // Bad values are reported as well as the count.
  CHECK(errorsOf(withExceptions(R"({"ehlo": "a b", "cert_sha256": "00"})")) ==
        std::vector<std::string>{
            "/tenants/0/exceptions/0/ehlo: must be an EHLO name: 1 to 255 printable characters "
            "without spaces",
            "/tenants/0/exceptions/0/cert_sha256: must be a SHA-256 fingerprint: 64 hex digits, "
            "colons allowed",
            message});
  CHECK(errorsOf(withExceptions(R"({"client": "192.0.2.1", "note": "x"})")) ==
        one("/tenants/0/exceptions/0/note: unknown key"));
}

TEST_CASE("tenants: client networks, IPv4 and IPv6") {
  for (const char* good : {"192.0.2.10/32", "192.0.2.10", "192.0.2.0/24", "0.0.0.0/0",
                           "2001:db8::/32", "2001:db8::1", "::ffff:192.0.2.0/120"}) {
    INFO(good);
    CHECK(errorsOf(withExceptions(std::string(R"({"client": ")") + good + "\"}")).empty());
  }
  for (const char* bad :
       {"192.0.2.300/32", "192.0.2.0/33", "192.0.2.0/", "192.0.2/24", "2001:db8::/129",
        "2001:db8:::1", "2001:db8::g", "fe80::1%eth0", "[2001:db8::1]", "example.com", ""}) {
    INFO(bad);
    CHECK(errorsOf(withExceptions(std::string(R"({"client": ")") + bad + "\"}")) ==
          one(std::string("/tenants/0/exceptions/0/client: \"") + bad +
              "\" is not an IPv4 or IPv6 network"));
  }
  CHECK(errorsOf(withExceptions(R"({"client": 3232235777})")) ==
        one("/tenants/0/exceptions/0/client: must be a string"));
  CHECK(errorsOf(withExceptions(R"({"user": "a@contoso.com"}, {"client": "192.0.2.300/32"})")) ==
        one(R"(/tenants/0/exceptions/1/client: "192.0.2.300/32" is not an IPv4 or IPv6 network)"));
}

TEST_CASE("tenants: users, EHLO names and certificate fingerprints") {
  const std::string userMessage = "must be an address such as user@example.com";
  for (const char* bad : {"printer", "@contoso.com", "printer@", "a b@contoso.com",
                          "printer@contoso_com", "printer@contoso.com."}) {
    INFO(bad);
    CHECK(errorsOf(withExceptions(std::string(R"({"user": ")") + bad + "\"}")) ==
          one("/tenants/0/exceptions/0/user: " + userMessage));
  }
  CHECK(errorsOf(withExceptions(R"({"user": "first.last+tag@sub.contoso.com"})")).empty());

  const std::string ehloMessage =
      "must be an EHLO name: 1 to 255 printable characters without spaces";
  for (const std::string& bad : {std::string(""), std::string("scanner one"),
                                 std::string("tab\tname"), std::string(256, 'a')}) {
    INFO(bad);
    CHECK(errorsOf(withExceptions(R"({"ehlo": )" + nlohmann::json(bad).dump() + "}")) ==
          one("/tenants/0/exceptions/0/ehlo: " + ehloMessage));
  }
  CHECK(errorsOf(withExceptions(R"({"ehlo": "[192.0.2.10]"})")).empty());

  const std::string certMessage = "must be a SHA-256 fingerprint: 64 hex digits, colons allowed";
  const std::string hex64(64, 'a');
  for (const std::string& bad : {std::string(63, 'a'), std::string(65, 'a'),
                                 std::string(63, 'a') + "g", std::string("sha256:") + hex64}) {
    INFO(bad);
    CHECK(errorsOf(withExceptions(R"({"cert_sha256": ")" + bad + "\"}")) ==
          one("/tenants/0/exceptions/0/cert_sha256: " + certMessage));
  }
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(withExceptions(R"({"cert_sha256": ")" + std::string(64, 'F') + "\"}"),
                       directory, errors));
  CHECK(directory.byId("contoso")->exceptions[0].value == std::string(64, 'f'));
}

TEST_CASE("tenants: expiry dates and times, reasons") {
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(withExceptions(R"({"user": "a@contoso.com", "expires": "2027-03-31"},
                                         {"user": "b@contoso.com", "expires": "2027-03-31T16:00:00Z"},
                                         {"user": "c@contoso.com", "expires": "2027-03-31T18:00:00.5+02:00"})"),
                       directory, errors));
  const auto& e = directory.byId("contoso")->exceptions;
  CHECK(*e[0].expires == kEndOf20270331);
  CHECK(*e[1].expires == k20270331At1600Z);
  CHECK(*e[2].expires == k20270331At1600Z);

  const std::string expiresMessage =
      "must be a date such as 2027-03-31 or an RFC 3339 time such as 2027-03-31T18:00:00Z";
  for (const char* bad : {R"("2027-02-30")", R"("31/03/2027")", R"("2027-03-31T25:00:00Z")",
                          R"("2027-03-31T16:00:00")", R"("")", "1806537600", "null"}) {
    INFO(bad);
    CHECK(errorsOf(withExceptions(std::string(R"({"user": "a@contoso.com", "expires": )") + bad +
                                  "}")) ==
          one("/tenants/0/exceptions/0/expires: " + expiresMessage));
  }

  // 200 characters, not bytes.
  std::string accents;
  for (int i = 0; i < 200; ++i) {
    accents += "é";
  }
  CHECK(errorsOf(withExceptions(R"({"user": "a@contoso.com", "reason": ")" + accents + "\"}"))
            .empty());
  CHECK(errorsOf(withExceptions(R"({"user": "a@contoso.com", "reason": ")" + std::string(201, 'x') +
                                "\"}")) ==
        one("/tenants/0/exceptions/0/reason: must be at most 200 characters"));
  CHECK(errorsOf(withExceptions(R"({"user": "a@contoso.com", "reason": 7})")) ==
        one("/tenants/0/exceptions/0/reason: must be a string"));
}

TEST_CASE("tenants: every error is collected, in document order") {
  const char* json = R"({"tenants": [
    {"id": "contoso", "domains": ["contoso.com", "bad domain"],
     "exceptions": [{"client": "192.0.2.300/32", "expires": "tomorrow"},
                    {"user": "nobody", "extra": 1}]},
    {"id": "contoso", "domains": ["contoso.com"], "allow_legacy_tls_clients": 1},
    {"domains": []}
  ], "comment": "x"})";
  CHECK(errorsOf(json) ==
        std::vector<std::string>{
            "/tenants/0/domains/1: must be a DNS name",
            R"(/tenants/0/exceptions/0/client: "192.0.2.300/32" is not an IPv4 or IPv6 network)",
            "/tenants/0/exceptions/0/expires: must be a date such as 2027-03-31 or an RFC 3339 "
            "time such as 2027-03-31T18:00:00Z",
            "/tenants/0/exceptions/1/user: must be an address such as user@example.com",
            "/tenants/0/exceptions/1/extra: unknown key",
            R"(/tenants/1/id: duplicate tenant id "contoso" (also /tenants/0/id))",
            R"(/tenants/1/domains/0: contoso.com already belongs to tenant "contoso" )"
            "(/tenants/0/domains/0)",
            "/tenants/1/allow_legacy_tls_clients: must be true or false",
            "/tenants/2/domains: must list at least one domain",
            R"(/tenants/2: "id" is required)",
            "/comment: unknown key",
        });
}

TEST_CASE("tenants: a bad document leaves the directory untouched") {
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(kExample, directory, errors));
  CHECK_FALSE(parseTenants(R"({"tenants": [{"id": "x", "domains": ["x.com"], "typo": 1}]})",
                           directory, errors));
  CHECK(errors.size() == 1);
  CHECK(directory.all().size() == 3);
  CHECK(directory.byId("x") == nullptr);
  CHECK(directory.forDomain("contoso.com") != nullptr);

  errors.clear();
  CHECK(parseTenants(R"({"tenants": []})", directory, errors));
  CHECK(directory.all().empty());
}

TEST_CASE("tenants: loadTenantsFile") {
  char pattern[] = "/tmp/smtpgate-tenants-test-XXXXXX";
  std::string dir = ::mkdtemp(pattern);
  std::ofstream(dir + "/tenants.json") << kExample;
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  CHECK(loadTenantsFile(dir + "/tenants.json", directory, errors));
  CHECK(errors.empty());
  CHECK(directory.all().size() == 3);

  CHECK_FALSE(loadTenantsFile(dir + "/missing.json", directory, errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].str() == "cannot read " + dir + "/missing.json: No such file or directory");
  CHECK(directory.all().size() == 3);
  std::filesystem::remove_all(dir);
}

TEST_CASE("tenants: the serializer round-trips") {
  policy::TenantDirectory first;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(kExample, first, errors));
  std::string json = tenantsToJson(first);
  INFO(json);
  policy::TenantDirectory second;
  REQUIRE(parseTenants(json, second, errors));
  REQUIRE(errors.empty());
  CHECK(tenantsToJson(second) == json);  // stable

  REQUIRE(second.all().size() == first.all().size());
  for (std::size_t i = 0; i < first.all().size(); ++i) {
    const auto& a = first.all()[i];
    const auto& b = second.all()[i];
    CHECK(a.id == b.id);
    CHECK(a.domains == b.domains);
    CHECK(a.allowLegacyTlsClients == b.allowLegacyTlsClients);
    REQUIRE(a.exceptions.size() == b.exceptions.size());
    for (std::size_t j = 0; j < a.exceptions.size(); ++j) {
      CHECK(a.exceptions[j].kind == b.exceptions[j].kind);
      CHECK(a.exceptions[j].value == b.exceptions[j].value);
      CHECK(a.exceptions[j].expires == b.exceptions[j].expires);
      CHECK(a.exceptions[j].reason == b.exceptions[j].reason);
    }
  }
  // A date stays a date; other times are written in UTC.
  CHECK(json.find(R"("expires": "2027-03-31")") != std::string::npos);
  CHECK(json.find(R"("expires": "2027-03-31T16:00:00Z")") != std::string::npos);
}

TEST_CASE("tenants: the serializer's layout") {
  policy::TenantDirectory directory;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(R"({"tenants": [
    {"exceptions": [{"reason": "scanner \"A\"", "expires": "2027-04-01T00:00:00+00:00",
                     "client": "192.0.2.10"},
                    {"user": "Printer@Contoso.com"}],
     "domains": ["Contoso.com", "contoso.org"], "id": "contoso"},
    {"id": "fabrikam", "domains": ["fabrikam.com"], "allow_legacy_tls_clients": true}]})",
                       directory, errors));
  CHECK(tenantsToJson(directory) == R"({
  "tenants": [
    {
      "id": "contoso",
      "domains": ["contoso.com", "contoso.org"],
      "allow_legacy_tls_clients": false,
      "exceptions": [
        {"client": "192.0.2.10/32", "expires": "2027-03-31", "reason": "scanner \"A\""},
        {"user": "printer@contoso.com"}
      ]
    },
    {
      "id": "fabrikam",
      "domains": ["fabrikam.com"],
      "allow_legacy_tls_clients": true,
      "exceptions": []
    }
  ]
}
)");
  CHECK(tenantsToJson(policy::TenantDirectory()) == "{\n  \"tenants\": []\n}\n");
  REQUIRE(parseTenants(tenantsToJson(policy::TenantDirectory()), directory, errors));
  CHECK(directory.all().empty());
}

TEST_CASE("tenants: a directory built in code (the admin API) serializes") {
  policy::TenantDirectory directory;
  policy::Tenant t;
  t.id = "northwind";
  t.domains = {"northwind.example"};
  auto e =
      policy::TenantException::make(Kind::Client, "10.1.2.3/8", k20270331At1600Z, "line 1\nline 2");
  REQUIRE(e.has_value());
  t.exceptions.push_back(*e);
  REQUIRE(directory.add(t));
  std::string json = tenantsToJson(directory);
  INFO(json);
  policy::TenantDirectory back;
  std::vector<ConfigError> errors;
  REQUIRE(parseTenants(json, back, errors));
  const auto& x = back.byId("northwind")->exceptions.at(0);
  CHECK(x.value == "10.0.0.0/8");
  CHECK(x.reason == "line 1\nline 2");
  CHECK(*x.expires == k20270331At1600Z);
  CHECK(back.byId("northwind")->matchingException(fromIp("10.200.0.1"), 0) != nullptr);
}
