#include "gateway/config.h"  // legacy_tls and tenants keys; the rest is in config_test.cc

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/json_validator.h"
#include "tests/gateway/config_fixtures.h"
#include "tls/self_signed.h"

using namespace smtpgate;

using namespace smtpgate::testing;

TEST_CASE("legacy_tls parses into the policy") {
  const char* json = R"({
    "tenants": "tenants.json",
    "legacy_tls": {
      "default_allow": false,
      "speedbump": [{"from": "2026-01-01T00:00:00Z", "reject_percent": 5},
                    {"from": "2026-03-01T01:00:00+01:00", "reject_percent": 50.5}],
      "strict_cutoff": "2026-06-01T00:00:00.750Z",
      "after_cutoff": "reply",
      "help_url": "https://example.com/tls-help?x=1"
    }
  })";
  std::vector<ConfigError> errors;
  Config c = parseConfig(json, "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.tenantsPath == "/etc/sg/tenants.json");
  const auto& p = c.legacyTls;
  CHECK_FALSE(p.defaultAllow);
  REQUIRE(p.speedbump.size() == 2);
  CHECK(p.speedbump[0].from == 1767225600);  // 2026-01-01T00:00:00Z
  CHECK(p.speedbump[0].rejectPercent == 5);
  CHECK(p.speedbump[1].from == 1772323200);  // 2026-03-01T00:00:00Z
  CHECK(p.speedbump[1].rejectPercent == 50.5);
  REQUIRE(p.strictCutoff.has_value());
  CHECK(*p.strictCutoff == 1780272000);  // 2026-06-01T00:00:00Z, the fraction dropped
  CHECK(p.afterCutoff == policy::AfterCutoff::Reply);
  CHECK(p.helpUrl == "https://example.com/tls-help?x=1");

  // Omitted keys keep the header's defaults; null spells out "no cutoff".
  c = parseConfig(R"({"legacy_tls": {"speedbump": [], "strict_cutoff": null}})", "/etc/sg", errors);
  REQUIRE(errors.empty());
  policy::LegacyTlsPolicy d;
  CHECK(c.legacyTls.defaultAllow == d.defaultAllow);
  CHECK(c.legacyTls.speedbump.empty());
  CHECK_FALSE(c.legacyTls.strictCutoff.has_value());
  CHECK(c.legacyTls.afterCutoff == d.afterCutoff);
  CHECK(c.legacyTls.helpUrl == d.helpUrl);
}

TEST_CASE("RFC 3339 times: offsets, fractions, and nothing else") {
  using json_schema::parseRfc3339;
  int64_t t = 0;
  CHECK(parseRfc3339("2026-01-01T00:00:00Z", t));
  CHECK(t == 1767225600);
  CHECK(parseRfc3339("2026-01-01T02:30:00+02:30", t));
  CHECK(t == 1767225600);
  CHECK(parseRfc3339("2025-12-31T19:00:00-05:00", t));
  CHECK(t == 1767225600);
  CHECK(parseRfc3339("2026-01-01T00:00:00.123456789Z", t));
  CHECK(t == 1767225600);
  CHECK(parseRfc3339("2026-01-01t00:00:00z", t));  // RFC 3339 allows lower case
  CHECK(t == 1767225600);
  CHECK(parseRfc3339("2016-12-31T23:59:60Z", t));  // a leap second
  CHECK(t == 1483228800);
  CHECK(parseRfc3339("2024-02-29T00:00:00Z", t));
  CHECK(t == 1709164800);
  CHECK(parseRfc3339("1969-12-31T00:00:00Z", t));
  CHECK(t == -86400);

  for (const char* bad : {"2026-01-01",
                          "2026-01-01T00:00:00",
                          "2026-01-01 00:00:00Z",
                          "2026-01-01T00:00Z",
                          "2026-1-01T00:00:00Z",
                          "2026-02-29T00:00:00Z",
                          "2100-02-29T00:00:00Z",
                          "2026-04-31T00:00:00Z",
                          "2026-13-01T00:00:00Z",
                          "2026-00-01T00:00:00Z",
                          "2026-01-00T00:00:00Z",
                          "2026-01-01T24:00:00Z",
                          "2026-01-01T00:60:00Z",
                          "2026-01-01T00:00:61Z",
                          "2026-01-01T00:00:00.Z",
                          "2026-01-01T00:00:00+0200",
                          "2026-01-01T00:00:00+24:00",
                          "2026-01-01T00:00:00+02:60",
                          "2026-01-01T00:00:00ZZ",
                          " 2026-01-01T00:00:00Z",
                          "2026-01-01T00:00:00Z ",
                          "+2026-01-01T00:00:00Z",
                          ""}) {
    INFO(bad);
    CHECK_FALSE(parseRfc3339(bad, t));
  }

  CHECK(json_schema::formatRfc3339(1767225600) == "2026-01-01T00:00:00Z");
  CHECK(json_schema::formatRfc3339(1806508800) == "2027-03-31T16:00:00Z");
  CHECK(json_schema::formatRfc3339(-1) == "1969-12-31T23:59:59Z");
  CHECK(json_schema::formatDate(1709164800 + 86399) == "2024-02-29");
  CHECK(json_schema::parseDate("2000-02-29", t));
  CHECK(json_schema::formatDate(t) == "2000-02-29");
  CHECK_FALSE(json_schema::parseDate("1900-02-29", t));
  CHECK_FALSE(json_schema::parseDate("2026-01-01T00:00:00Z", t));
}

TEST_CASE("legacy_tls: bad timestamps name the step") {
  const std::string message = "must be an RFC 3339 time such as 2026-01-01T00:00:00Z";
  CHECK(
      errorsOf(R"({"legacy_tls": {"speedbump": [{"from": "2026-01-01", "reject_percent": 5}]}})") ==
      one("/legacy_tls/speedbump/0/from: " + message));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [{"from": 1767225600, "reject_percent": 5}]}})") ==
        one("/legacy_tls/speedbump/0/from: " + message));
  CHECK(errorsOf(R"({"legacy_tls": {"strict_cutoff": "June 1st, 2026"}})") ==
        one("/legacy_tls/strict_cutoff: " + message));
  CHECK(errorsOf(R"({"legacy_tls": {"strict_cutoff": "2026-06-01T00:00:00"}})") ==
        one("/legacy_tls/strict_cutoff: " + message));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [{"from": "2026-01-01T00:00:00Z",
                                                    "reject_percent": "5%"}]}})") ==
        one("/legacy_tls/speedbump/0/reject_percent: must be a number"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [{"reject_percent": 5}, {}]}})") ==
        std::vector<std::string>{R"(/legacy_tls/speedbump/0: "from" is required)",
                                 R"(/legacy_tls/speedbump/1: "from" is required)",
                                 R"(/legacy_tls/speedbump/1: "reject_percent" is required)"});
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": {}}})") ==
        one("/legacy_tls/speedbump: must be an array"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [5]}})") ==
        one("/legacy_tls/speedbump/0: must be an object"));
  CHECK(errorsOf(R"({"legacy_tls": "on"})") == one("/legacy_tls: must be an object"));
}

TEST_CASE("legacy_tls: steps in time order, percents 0..100, cutoff after the last step") {
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-03-01T00:00:00Z", "reject_percent": 5},
          {"from": "2026-01-01T00:00:00Z", "reject_percent": 50}]}})") ==
        one("/legacy_tls/speedbump/1/from: must be later than /legacy_tls/speedbump/0/from"));
  // The same instant twice is not an order either.
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-01-01T00:00:00Z", "reject_percent": 5},
          {"from": "2026-01-01T01:00:00+01:00", "reject_percent": 50}]}})") ==
        one("/legacy_tls/speedbump/1/from: must be later than /legacy_tls/speedbump/0/from"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-01-01T00:00:00Z", "reject_percent": 150}]}})") ==
        one("/legacy_tls/speedbump/0/reject_percent: must be 0..100"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-01-01T00:00:00Z", "reject_percent": -1}]}})") ==
        one("/legacy_tls/speedbump/0/reject_percent: must be 0..100"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-01-01T00:00:00Z", "reject_percent": 0},
          {"from": "2026-02-01T00:00:00Z", "reject_percent": 100}]}})")
            .empty());
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-03-01T00:00:00Z", "reject_percent": 50}],
          "strict_cutoff": "2026-02-01T00:00:00Z"}})") ==
        one("/legacy_tls/strict_cutoff: must be later than the last speedbump step"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-03-01T00:00:00Z", "reject_percent": 50}],
          "strict_cutoff": "2026-03-01T00:00:00Z"}})") ==
        one("/legacy_tls/strict_cutoff: must be later than the last speedbump step"));
  // A cutoff without steps goes straight from open to closed.
  CHECK(errorsOf(R"({"legacy_tls": {"strict_cutoff": "2026-03-01T00:00:00Z"}})").empty());

  // A step that does not parse is left out of the order check; the others keep their indices.
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [
          {"from": "2026-03-01T00:00:00Z", "reject_percent": 5},
          {"from": "soon", "reject_percent": 10},
          {"from": "2026-01-01T00:00:00Z", "reject_percent": 150}]}})") ==
        std::vector<std::string>{
            "/legacy_tls/speedbump/1/from: must be an RFC 3339 time such as 2026-01-01T00:00:00Z",
            "/legacy_tls/speedbump/2/from: must be later than /legacy_tls/speedbump/0/from",
            "/legacy_tls/speedbump/2/reject_percent: must be 0..100"});
}

TEST_CASE("legacy_tls: enumerations, URLs and unknown keys") {
  CHECK(errorsOf(R"({"legacy_tls": {"after_cutoff": "refuse_handshake"}})") ==
        one(R"(/legacy_tls/after_cutoff: must be "refuse-handshake" or "reply")"));
  CHECK(errorsOf(R"({"legacy_tls": {"default_allow": "yes"}})") ==
        one("/legacy_tls/default_allow: must be true or false"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbumps": []}})") ==
        one("/legacy_tls/speedbumps: unknown key"));
  CHECK(errorsOf(R"({"legacy_tls": {"speedbump": [{"from": "2026-01-01T00:00:00Z",
                                                    "reject_percent": 5, "until": "x"}]}})") ==
        one("/legacy_tls/speedbump/0/until: unknown key"));
  const std::string urlMessage = "must be an https:// URL such as https://aka.ms/smtp_auth_tls";
  for (const char* bad : {"http://example.com/help", "https://", "https:///path",
                          "https://example.com/a b", "aka.ms/smtp_auth_tls"}) {
    INFO(bad);
    CHECK(errorsOf(std::string(R"({"legacy_tls": {"help_url": ")") + bad + "\"}}") ==
          one("/legacy_tls/help_url: " + urlMessage));
  }
  CHECK(errorsOf(R"({"legacy_tls": {"help_url": "https://example.com/\r\n250 OK"}})") ==
        one("/legacy_tls/help_url: " + urlMessage));
  CHECK(errorsOf(R"({"legacy_tls": {"help_url": 5}})") ==
        one("/legacy_tls/help_url: must be a string"));
  CHECK(errorsOf(R"({"legacy_tls": {"help_url": "https://example.com/)" + std::string(300, 'a') +
                 "\"}}") == one("/legacy_tls/help_url: must be at most 300 characters"));
}

TEST_CASE("the tenants path resolves against the configuration's directory") {
  std::vector<ConfigError> errors;
  CHECK(parseConfig(R"({"tenants": "t/../tenants.json"})", "/etc/sg", errors).tenantsPath ==
        "/etc/sg/tenants.json");
  CHECK(parseConfig(R"({"tenants": "/srv/tenants.json"})", "/etc/sg", errors).tenantsPath ==
        "/srv/tenants.json");
  CHECK(parseConfig(R"({"tenants": ""})", "/etc/sg", errors).tenantsPath.empty());
  CHECK(errors.empty());
  CHECK(errorsOf(R"({"tenants": ["a.json"]})") == one("/tenants: must be a string"));

  TempDir dir;
  dir.write("gw.json", R"({"tenants": "tenants.json"})");
  Config c = loadConfigFile(dir.path + "/gw.json", errors);
  REQUIRE(errors.empty());
  CHECK(c.tenantsPath == dir.path + "/tenants.json");
}

TEST_CASE("checkConfigFiles: the tenants file, with pointers inside it") {
  TempDir dir;
  dir.write("bad.json", R"({"tenants": [{"id": "contoso", "domains": ["contoso.com", "a b"]},
                                       {"id": "contoso", "domains": ["contoso.com"]}]})");
  dir.write("broken.json", "{\"tenants\": [");
  dir.write("good.json", R"({"tenants": [{"id": "contoso", "domains": ["contoso.com"]}]})");
  auto check = [&](const std::string& tenants) {
    std::vector<ConfigError> errors;
    Config c = parseConfig(R"({"backend": {"spool": "spool"}, "tenants": ")" + tenants + "\"}",
                           dir.path, errors);
    REQUIRE(errors.empty());
    checkConfigFiles(c, errors);
    std::vector<std::string> out;
    for (const auto& e : errors) {
      out.push_back(e.str());
    }
    return out;
  };
  const std::string bad = "/tenants: " + dir.path + "/bad.json: ";
  CHECK(check("bad.json") ==
        std::vector<std::string>{
            bad + "/tenants/0/domains/1: must be a DNS name",
            bad + R"(/tenants/1/id: duplicate tenant id "contoso" (also /tenants/0/id))",
            bad + R"(/tenants/1/domains/0: contoso.com already belongs to tenant "contoso" )"
                  "(/tenants/0/domains/0)"});
  CHECK(check("missing.json") ==
        one("/tenants: cannot read " + dir.path + "/missing.json: No such file or directory"));
  auto broken = check("broken.json");
  REQUIRE(broken.size() == 1);
  CHECK(broken[0].rfind("/tenants: " + dir.path + "/broken.json: invalid JSON at line 1", 0) == 0);
  CHECK(check("good.json").empty());
}
