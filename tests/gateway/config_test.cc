#include "gateway/config.h"

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

TEST_CASE("embedded default validates and matches SPEC section 9") {
  std::vector<ConfigError> errors;
  Config parsed = parseConfig(embeddedDefaultJson(), "/srv/gw", errors);
  REQUIRE(errors.empty());

  Config c = embeddedDefaultConfig("/srv/gw");
  CHECK(c.hostname == "localhost");
  CHECK(c.stateDir == "/srv/gw/var");
  CHECK(c.sourcePath.empty());
  REQUIRE(c.listeners.size() == 3);
  CHECK(c.listeners[0].name == "strict-starttls");
  CHECK(c.listeners[0].listen.str() == "127.0.0.1:2587");
  CHECK(c.listeners[0].tls == TlsMode::StartTls);
  CHECK(c.listeners[0].endpoint == EndpointKind::Strict);
  CHECK(c.listeners[0].requireTls);
  CHECK(c.listeners[1].name == "strict-implicit");
  CHECK(c.listeners[1].listen.str() == "127.0.0.1:2465");
  CHECK(c.listeners[1].tls == TlsMode::Implicit);
  CHECK(c.listeners[1].endpoint == EndpointKind::Strict);
  CHECK(c.listeners[2].name == "legacy-starttls");
  CHECK(c.listeners[2].listen.str() == "127.0.0.1:2588");
  CHECK(c.listeners[2].tls == TlsMode::StartTls);
  CHECK(c.listeners[2].endpoint == EndpointKind::Legacy);
  REQUIRE(c.certificates.size() == 2);
  CHECK(c.certificates[0].cert == "/srv/gw/var/tls/ecdsa.pem");
  CHECK(c.certificates[0].key == "/srv/gw/var/tls/ecdsa.key");
  CHECK(c.certificates[1].cert == "/srv/gw/var/tls/rsa.pem");
  CHECK(c.certificates[1].key == "/srv/gw/var/tls/rsa.key");
  CHECK(c.spool.dir == "/srv/gw/var/spool");
  CHECK(c.spool.users == "/srv/gw/var/users.txt");
  CHECK(c.tenantsPath == "/srv/gw/var/tenants.json");
  CHECK(c.legacyTls.defaultAllow);
  CHECK(c.legacyTls.speedbump.empty());
  CHECK_FALSE(c.legacyTls.strictCutoff.has_value());
  CHECK(c.legacyTls.afterCutoff == policy::AfterCutoff::RefuseHandshake);
  CHECK(c.legacyTls.helpUrl == "https://aka.ms/smtp_auth_tls");
  CHECK(c.admin.enabled);
  CHECK(c.admin.listen.str() == "127.0.0.1:8025");
  CHECK(c.admin.tokenFile == "/srv/gw/var/admin.token");

  // The knobs it spells out are the built-in defaults.
  Config d;
  CHECK(c.legacyTls.defaultAllow == d.legacyTls.defaultAllow);
  CHECK(c.legacyTls.afterCutoff == d.legacyTls.afterCutoff);
  CHECK(c.legacyTls.helpUrl == d.legacyTls.helpUrl);
  CHECK(c.smtp.maxMessageBytes == d.smtp.maxMessageBytes);
  CHECK(c.smtp.maxRecipients == d.smtp.maxRecipients);
  CHECK(c.smtp.bareLfReject == d.smtp.bareLfReject);
  CHECK(c.smtp.receivedHeader == d.smtp.receivedHeader);
  CHECK(c.limits.maxConnections == d.limits.maxConnections);
  CHECK(c.limits.maxConnectionsPerIp == d.limits.maxConnectionsPerIp);
  CHECK(c.limits.maxErrors == d.limits.maxErrors);
  CHECK(c.limits.timeouts.command == d.limits.timeouts.command);
  CHECK(c.limits.timeouts.dataBlock == d.limits.timeouts.dataBlock);
  CHECK(c.limits.timeouts.handshake == d.limits.timeouts.handshake);
  CHECK(c.limits.timeouts.drain == d.limits.timeouts.drain);
}

TEST_CASE("a full configuration parses into the struct") {
  const char* json = R"({
    "hostname": "smtp.example.com",
    "state_dir": "/var/lib/smtpgate",
    "workers": 4,
    "listeners": [
      {"name": "submission", "listen": "0.0.0.0:587", "tls": "starttls", "endpoint": "by-sni"},
      {"name": "submissions", "listen": "0.0.0.0:465", "tls": "implicit", "endpoint": "strict"},
      {"name": "legacy_1", "listen": "192.0.2.1:10587", "endpoint": "legacy"},
      {"name": "mx", "listen": "[::]:25", "tls": "starttls", "endpoint": "strict",
       "require_tls": false}
    ],
    "hostnames": {"SMTP.Example.com": "strict", "smtp-legacy.example.com": "legacy"},
    "default_endpoint": "legacy",
    "certificates": [{"cert": "/etc/sg/smtp.pem", "key": "/etc/sg/smtp.key"},
                     {"cert": "rsa.pem", "key": "keys/rsa.key"}],
    "backend": {"spool": "/var/spool/smtpgate", "users": "users.txt"},
    "smtp": {"max_message_bytes": 1048576, "max_recipients": 50, "bare_lf": "reject",
             "received_header": false},
    "limits": {"max_connections": 100, "max_connections_per_ip": 5, "max_errors": 3,
               "timeouts_s": {"command": 60, "data_block": 120, "handshake": 10, "drain": 0}}
  })";
  std::vector<ConfigError> errors;
  Config c = parseConfig(json, "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.hostname == "smtp.example.com");
  CHECK(c.stateDir == "/var/lib/smtpgate");
  CHECK(c.workers == 4);
  REQUIRE(c.listeners.size() == 4);
  CHECK(c.listeners[0].endpoint == EndpointKind::BySni);
  CHECK(c.listeners[1].tls == TlsMode::Implicit);
  CHECK(c.listeners[2].name == "legacy_1");
  CHECK(c.listeners[2].tls == TlsMode::StartTls);  // default
  CHECK(c.listeners[2].endpoint == EndpointKind::Legacy);
  CHECK(c.listeners[2].requireTls);  // default
  CHECK(c.listeners[3].listen.host == "::");
  CHECK(c.listeners[3].listen.port == 25);
  CHECK(c.listeners[3].listen.str() == "[::]:25");
  CHECK_FALSE(c.listeners[3].requireTls);
  REQUIRE(c.hostnames.size() == 2);
  CHECK(c.hostnames.at("smtp.example.com") == EndpointKind::Strict);  // lower-cased
  CHECK(c.hostnames.at("smtp-legacy.example.com") == EndpointKind::Legacy);
  CHECK(c.defaultEndpoint == EndpointKind::Legacy);
  REQUIRE(c.certificates.size() == 2);
  CHECK(c.certificates[1].cert == "/etc/sg/rsa.pem");
  CHECK(c.certificates[1].key == "/etc/sg/keys/rsa.key");
  CHECK(c.spool.dir == "/var/spool/smtpgate");
  CHECK(c.spool.users == "/etc/sg/users.txt");
  CHECK(c.smtp.maxMessageBytes == 1048576);
  CHECK(c.smtp.maxRecipients == 50);
  CHECK(c.smtp.bareLfReject);
  CHECK_FALSE(c.smtp.receivedHeader);
  CHECK(c.limits.maxConnections == 100);
  CHECK(c.limits.maxConnectionsPerIp == 5);
  CHECK(c.limits.maxErrors == 3);
  CHECK(c.limits.timeouts.command == 60);
  CHECK(c.limits.timeouts.dataBlock == 120);
  CHECK(c.limits.timeouts.handshake == 10);
  CHECK(c.limits.timeouts.drain == 0);
}

TEST_CASE("an empty object is all defaults") {
  std::vector<ConfigError> errors;
  Config c = parseConfig("{}", "/etc/sg", errors);
  REQUIRE(errors.empty());
  Config d;
  CHECK(c.hostname == d.hostname);
  CHECK(c.stateDir == "/var/lib/smtpgate");
  CHECK(c.listeners.empty());
  CHECK(c.certificates.empty());
  // No backend section: the spool lives under the state directory, without AUTH.
  CHECK(c.spool.dir == "/var/lib/smtpgate/spool");
  CHECK(c.spool.users.empty());
  CHECK(c.smtp.maxMessageBytes == d.smtp.maxMessageBytes);
  // No tenants file: legacy_tls.default_allow decides for every domain.
  CHECK(c.tenantsPath.empty());
  CHECK(c.legacyTls.defaultAllow);
  CHECK(c.legacyTls.speedbump.empty());
  CHECK_FALSE(c.legacyTls.strictCutoff.has_value());

  Config relative = parseConfig(R"({"state_dir": "state"})", "/etc/sg", errors);
  CHECK(relative.spool.dir == "/etc/sg/state/spool");
}

TEST_CASE("wrong types name the value and the expected type") {
  CHECK(errorsOf(R"({"workers": "4"})") == one("/workers: must be an integer"));
  CHECK(errorsOf(R"({"workers": 1.5})") == one("/workers: must be an integer"));
  CHECK(errorsOf(R"({"workers": 1e30})") == one("/workers: must be an integer"));
  CHECK(errorsOf(R"({"hostname": 5})") == one("/hostname: must be a string"));
  CHECK(errorsOf(R"({"listeners": {}})") == one("/listeners: must be an array"));
  CHECK(errorsOf(R"({"listeners": [5]})") == one("/listeners/0: must be an object"));
  CHECK(errorsOf(R"({"hostnames": []})") == one("/hostnames: must be an object"));
  CHECK(errorsOf(R"({"smtp": null})") == one("/smtp: must be an object"));
  CHECK(errorsOf(R"({"smtp": {"received_header": "yes"}})") ==
        one("/smtp/received_header: must be true or false"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": 5}})") ==
        one("/limits/timeouts_s: must be an object"));
  CHECK(errorsOf(R"({"certificates": [{"cert": 1, "key": "k"}]})") ==
        one("/certificates/0/cert: must be a string"));
  CHECK(errorsOf(R"({"state_dir": ""})") == one("/state_dir: must not be empty"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "require_tls": 1})")) ==
        one("/listeners/0/require_tls: must be true or false"));
  CHECK(errorsOf("[]") == one("the configuration must be a JSON object"));
}

TEST_CASE("ranges have a floor and a ceiling") {
  CHECK(errorsOf(R"({"workers": 256})").empty());
  CHECK(errorsOf(R"({"workers": 257})") == one("/workers: must be 0..256"));
  CHECK(errorsOf(R"({"workers": -1})") == one("/workers: must be 0..256"));
  CHECK(errorsOf(R"({"workers": 18446744073709551615})") == one("/workers: must be 0..256"));
  CHECK(errorsOf(R"({"smtp": {"max_message_bytes": 1024}})").empty());
  CHECK(errorsOf(R"({"smtp": {"max_message_bytes": 1023}})") ==
        one("/smtp/max_message_bytes: must be 1024..1073741824"));
  CHECK(errorsOf(R"({"smtp": {"max_message_bytes": 1073741825}})") ==
        one("/smtp/max_message_bytes: must be 1024..1073741824"));
  CHECK(errorsOf(R"({"smtp": {"max_recipients": 0}})") ==
        one("/smtp/max_recipients: must be 1..10000"));
  CHECK(errorsOf(R"({"smtp": {"max_recipients": 10001}})") ==
        one("/smtp/max_recipients: must be 1..10000"));
  CHECK(errorsOf(R"({"limits": {"max_connections": 1000001}})") ==
        one("/limits/max_connections: must be 1..1000000"));
  CHECK(errorsOf(R"({"limits": {"max_connections_per_ip": 0}})") ==
        one("/limits/max_connections_per_ip: must be 1..100000"));
  CHECK(errorsOf(R"({"limits": {"max_errors": 1001}})") ==
        one("/limits/max_errors: must be 1..1000"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"command": 9}}})") ==
        one("/limits/timeouts_s/command: must be 10..3600"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"data_block": 3601}}})") ==
        one("/limits/timeouts_s/data_block: must be 10..3600"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"handshake": 0}}})") ==
        one("/limits/timeouts_s/handshake: must be 1..600"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"drain": 3601}}})") ==
        one("/limits/timeouts_s/drain: must be 0..3600"));
}

TEST_CASE("abuse limits have defaults, a floor and a ceiling") {
  Config d;
  CHECK(d.limits.newConnectionsPerIpPerMinute == 600);
  CHECK(d.limits.newTlsHandshakesPerIpPerMinute == 600);
  CHECK(d.limits.minDataRateBps == 1024);
  CHECK(d.limits.errorDelayMs == 1000);
  CHECK(d.limits.timeouts.dataTotal == 1800);
  CHECK(d.limits.timeouts.dataRateWindow == 30);
  CHECK(d.limits.timeouts.write == 60);

  std::vector<ConfigError> errors;
  Config c = parseConfig(R"({"limits": {"new_connections_per_ip_per_minute": 5,
      "new_tls_handshakes_per_ip_per_minute": 2, "min_data_rate_bps": 0, "error_delay_ms": 0,
      "timeouts_s": {"data_total": 10, "data_rate_window": 1, "write": 5}}})",
                         "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.limits.newConnectionsPerIpPerMinute == 5);
  CHECK(c.limits.newTlsHandshakesPerIpPerMinute == 2);
  CHECK(c.limits.minDataRateBps == 0);
  CHECK(c.limits.errorDelayMs == 0);
  CHECK(c.limits.timeouts.dataTotal == 10);
  CHECK(c.limits.timeouts.dataRateWindow == 1);
  CHECK(c.limits.timeouts.write == 5);

  CHECK(errorsOf(R"({"limits": {"new_connections_per_ip_per_minute": 0}})") ==
        one("/limits/new_connections_per_ip_per_minute: must be 1..100000"));
  CHECK(errorsOf(R"({"limits": {"new_connections_per_ip_per_minute": 100001}})") ==
        one("/limits/new_connections_per_ip_per_minute: must be 1..100000"));
  CHECK(errorsOf(R"({"limits": {"new_tls_handshakes_per_ip_per_minute": 0}})") ==
        one("/limits/new_tls_handshakes_per_ip_per_minute: must be 1..100000"));
  CHECK(errorsOf(R"({"limits": {"new_tls_handshakes_per_ip_per_minute": 100001}})") ==
        one("/limits/new_tls_handshakes_per_ip_per_minute: must be 1..100000"));
  CHECK(errorsOf(R"({"limits": {"min_data_rate_bps": -1}})") ==
        one("/limits/min_data_rate_bps: must be 0..100000000"));
  CHECK(errorsOf(R"({"limits": {"min_data_rate_bps": 100000001}})") ==
        one("/limits/min_data_rate_bps: must be 0..100000000"));
  CHECK(errorsOf(R"({"limits": {"error_delay_ms": 30001}})") ==
        one("/limits/error_delay_ms: must be 0..30000"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"data_total": 9}}})") ==
        one("/limits/timeouts_s/data_total: must be 10..86400"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"data_total": 86401}}})") ==
        one("/limits/timeouts_s/data_total: must be 10..86400"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"data_rate_window": 0}}})") ==
        one("/limits/timeouts_s/data_rate_window: must be 1..3600"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"data_rate_window": 3601}}})") ==
        one("/limits/timeouts_s/data_rate_window: must be 1..3600"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"write": 4}}})") ==
        one("/limits/timeouts_s/write: must be 5..3600"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"write": 3601}}})") ==
        one("/limits/timeouts_s/write: must be 5..3600"));
}

TEST_CASE("enumerations list their choices") {
  CHECK(errorsOf(R"({"default_endpoint": "by-sni"})") ==
        one(R"(/default_endpoint: must be "strict" or "legacy")"));
  CHECK(errorsOf(R"({"smtp": {"bare_lf": "strip"}})") ==
        one(R"(/smtp/bare_lf: must be "normalize" or "reject")"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "tls": "STARTTLS"})")) ==
        one(R"(/listeners/0/tls: must be "starttls" or "implicit")"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "endpoint": 1})")) ==
        one(R"(/listeners/0/endpoint: must be "strict", "legacy" or "by-sni")"));
  CHECK(errorsOf(R"({"hostnames": {"smtp.example.com": "by-sni"}})") ==
        one(R"(/hostnames/smtp.example.com: must be "strict" or "legacy")"));
}

TEST_CASE("unknown keys anywhere are errors") {
  CHECK(errorsOf(R"({"smtp": {"max_mesage_bytes": 1}})") ==
        one("/smtp/max_mesage_bytes: unknown key"));
  CHECK(errorsOf(R"({"hostnme": "x"})") == one("/hostnme: unknown key"));
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"backend_conect": 10}}})") ==
        one("/limits/timeouts_s/backend_conect: unknown key"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "port": 25})")) ==
        one("/listeners/0/port: unknown key"));
  CHECK(errorsOf(R"({"certificates": [{"cert": "c", "key": "k", "chain": "x"}]})") ==
        one("/certificates/0/chain: unknown key"));
  CHECK(errorsOf(R"({"backend": {"spool": "s", "user": "u"}})") ==
        one("/backend/user: unknown key"));
  // Pointer tokens are escaped per RFC 6901.
  CHECK(errorsOf(R"({"a/b~c": 1})") == one("/a~1b~0c: unknown key"));
}

TEST_CASE("listeners: proxy_protocol names the trusted load balancers") {
  CHECK(errorsOf(withListener(
            R"({"name": "a", "listen": "127.0.0.1:25", "proxy_protocol": {"trusted": []}})")) ==
        one("/listeners/0/proxy_protocol/trusted: must list at least one network (CIDR) of the "
            "load balancers"));
  CHECK(errorsOf(withListener(
            R"({"name": "a", "listen": "127.0.0.1:25", "proxy_protocol": {"trusted": ["10.0.0.0/33"]}})")) ==
        one(R"(/listeners/0/proxy_protocol/trusted/0: "10.0.0.0/33" is not an IPv4 or IPv6 network (CIDR such as "10.0.0.0/8"))"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "proxy_protocol": {}})")) ==
        one(R"(/listeners/0/proxy_protocol: "trusted" is required)"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "proxy_protocol": true})")) ==
        one("/listeners/0/proxy_protocol: must be an object"));
  CHECK(errorsOf(withListener(
            R"({"name": "a", "listen": "127.0.0.1:25", "proxy_protocol": {"trusted": "10.0.0.0/8"}})")) ==
        one("/listeners/0/proxy_protocol/trusted: must be an array"));
  CHECK(errorsOf(withListener(
            R"({"name": "a", "listen": "127.0.0.1:25", "proxy_protocol": {"trusted": ["10.0.0.0/8"], "v": 2}})")) ==
        one("/listeners/0/proxy_protocol/v: unknown key"));

  std::vector<ConfigError> errors;
  Config c = parseConfig(
      R"({"listeners": [{"name": "a", "listen": "127.0.0.1:25",
                         "proxy_protocol": {"trusted": ["10.0.0.0/8", "2001:db8::/32", "127.0.0.5"]}},
                        {"name": "b", "listen": "127.0.0.1:26"}],
          "certificates": [{"cert": "c", "key": "k"}]})",
      "/etc/sg", errors);
  REQUIRE(errors.empty());
  REQUIRE(c.listeners[0].proxyTrusted.size() == 3);
  CHECK(c.listeners[0].proxyTrusted[0].contains("10.1.2.3"));
  CHECK(c.listeners[0].proxyTrusted[1].contains("2001:db8::7"));
  CHECK(c.listeners[0].proxyTrusted[2].str() == "127.0.0.5/32");
  CHECK(c.listeners[1].proxyTrusted.empty());
}

TEST_CASE("trace: store, retention and the JSON-lines stream") {
  std::vector<ConfigError> errors;
  Config c = parseConfig("{}", "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.trace.sqlite);  // the defaults
  CHECK(c.trace.retentionDays == 90);
  CHECK(c.trace.eventsJsonl.empty());
  CHECK(embeddedDefaultConfig("/srv/gw").trace.sqlite);

  c = parseConfig(R"({"trace": {"store": "none", "retention_days": 3650, "events_jsonl": "-"}})",
                  "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK_FALSE(c.trace.sqlite);
  CHECK(c.trace.retentionDays == 3650);
  CHECK(c.trace.eventsJsonl == "-");  // stdout, not a path

  c = parseConfig(R"({"trace": {"store": "sqlite", "retention_days": 1,
                      "events_jsonl": "log/../events.jsonl"}})",
                  "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.trace.sqlite);
  CHECK(c.trace.retentionDays == 1);
  CHECK(c.trace.eventsJsonl == "/etc/sg/events.jsonl");
  c = parseConfig(R"({"trace": {"events_jsonl": "/var/log/sg.jsonl"}})", "/etc/sg", errors);
  CHECK(c.trace.eventsJsonl == "/var/log/sg.jsonl");
  c = parseConfig(R"({"trace": {"events_jsonl": ""}})", "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.trace.eventsJsonl.empty());  // off

  CHECK(errorsOf(R"({"trace": {"store": "mysql"}})") ==
        one(R"(/trace/store: must be "sqlite" or "none")"));
  CHECK(errorsOf(R"({"trace": {"retention_days": 0}})") ==
        one("/trace/retention_days: must be 1..3650"));
  CHECK(errorsOf(R"({"trace": {"retention_days": 3651}})") ==
        one("/trace/retention_days: must be 1..3650"));
  CHECK(errorsOf(R"({"trace": {"events_jsonl": 1}})") ==
        one("/trace/events_jsonl: must be a string"));
  CHECK(errorsOf(R"({"trace": {"path": "x.sqlite"}})") == one("/trace/path: unknown key"));
  CHECK(errorsOf(R"({"trace": "sqlite"})") == one("/trace: must be an object"));
  CHECK(errorsOf(R"({"trace": {"store": "x", "retention_days": -1}})") ==
        std::vector<std::string>{R"(/trace/store: must be "sqlite" or "none")",
                                 "/trace/retention_days: must be 1..3650"});
}

TEST_CASE("backend: relay to an MTA, or the spool, not both") {
  std::vector<ConfigError> errors;
  Config c = parseConfig(
      R"({"backend": {"smtp": "[::1]:10025", "handoff": "proxy-v2", "tls": "starttls"},
          "limits": {"timeouts_s": {"backend_connect": 5}}})",
      "/etc/sg", errors);
  CHECK(errors.empty());
  CHECK(c.relay);
  CHECK(c.smtpBackend.address.str() == "[::1]:10025");
  CHECK(c.smtpBackend.handoff == Handoff::ProxyV2);
  CHECK(c.smtpBackend.startTls);
  CHECK(c.limits.timeouts.backendConnect == 5);
  c = parseConfig(R"({"backend": {"smtp": "127.0.0.1:10025"}})", "/etc/sg", errors);
  CHECK(c.smtpBackend.handoff == Handoff::Xclient);  // the default
  CHECK_FALSE(c.smtpBackend.startTls);
  CHECK_FALSE(parseConfig("{}", "/etc/sg", errors).relay);

  CHECK(errorsOf(R"({"backend": {"smtp": "127.0.0.1:10025", "spool": "s"}})") ==
        one(R"(/backend: either "smtp" (relay to an MTA) or "spool", not both; with "smtp" the MTA checks AUTH credentials)"));
  CHECK(errorsOf(R"({"backend": {"spool": "s", "handoff": "xclient"}})") ==
        one(R"(/backend: "handoff" and "tls" need "smtp")"));
  CHECK(errorsOf(R"({"backend": {"smtp": "127.0.0.1:10025", "handoff": "xforward"}})") ==
        one(R"(/backend/handoff: must be "xclient", "proxy-v1", "proxy-v2" or "none")"));
  CHECK(errorsOf(R"({"backend": {"smtp": "localhost:10025"}})").size() == 1);
  CHECK(errorsOf(R"({"backend": {"smtp": "127.0.0.1:0"}})").size() == 1);
  CHECK(errorsOf(R"({"limits": {"timeouts_s": {"backend_connect": 0}}})") ==
        one("/limits/timeouts_s/backend_connect: must be 1..300"));
}

TEST_CASE("listen addresses: IPv4 and bracketed IPv6") {
  auto parse = [](const std::string& text, ListenAddress& out) {
    std::string error;
    bool ok = parseListenAddress(text, out, error);
    return ok ? std::string("ok") : error;
  };
  ListenAddress a;
  CHECK(parse("127.0.0.1:2587", a) == "ok");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 2587);
  CHECK(parse("[::1]:25", a) == "ok");
  CHECK(a.host == "::1");
  CHECK(a.str() == "[::1]:25");
  CHECK(parse("[2001:DB8:0:0::1]:65535", a) == "ok");
  CHECK(a.host == "2001:db8::1");  // canonical form
  CHECK(a.port == 65535);

  CHECK(parse("127.0.0.1", a) == R"(must be "IPV4:PORT" or "[IPV6]:PORT")");
  CHECK(parse("[::1]25", a) == R"(must be "IPV4:PORT" or "[IPV6]:PORT")");
  CHECK(parse("::1:25", a) == R"(IPv6 addresses must be in brackets, as in "[::1]:25")");
  CHECK(parse("localhost:25", a) == R"("localhost" is not an IPv4 address)");
  CHECK(parse("[fe80::1%eth0]:25", a) == R"("fe80::1%eth0" is not an IPv6 address)");
  CHECK(parse("127.0.0.1:0", a) == "port must be 1..65535");
  CHECK(parse("127.0.0.1:65536", a) == "port must be 1..65535");
  CHECK(parse("127.0.0.1:", a) == "port must be 1..65535");
  CHECK(parse("127.0.0.1:+25", a) == "port must be 1..65535");
  CHECK(parse("127.0.0.1:0000025", a) == "port must be 1..65535");

  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "0.0.0.0:70000"})")) ==
        one("/listeners/0/listen: port must be 1..65535"));
}

TEST_CASE("listener names and addresses are unique") {
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25"},
                                 {"name": "a", "listen": "127.0.0.1:26"})")) ==
        one(R"(/listeners/1/name: duplicate listener name "a" (also /listeners/0/name))"));
  // The same socket spelled two ways.
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "[::]:25"},
                                 {"name": "b", "listen": "[0:0::0]:25"})")) ==
        one("/listeners/1/listen: duplicate address [::]:25 (also /listeners/0/listen)"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "0.0.0.0:25"},
                                 {"name": "b", "listen": "[::]:25"})"))
            .empty());
  CHECK(errorsOf(withListener(R"({"name": "bad name", "listen": "127.0.0.1:25"})")) ==
        one(R"(/listeners/0/name: must be 1 to 32 letters, digits, "-" or "_")"));
  CHECK(errorsOf(withListener(
            R"({"name": "abcdefghijklmnopqrstuvwxyz0123456", "listen": "127.0.0.1:25"})")) ==
        one(R"(/listeners/0/name: must be 1 to 32 letters, digits, "-" or "_")"));
  CHECK(errorsOf(withListener(R"({"tls": "implicit"})")) ==
        std::vector<std::string>{R"(/listeners/0: "name" is required)",
                                 R"(/listeners/0: "listen" is required)"});
}

TEST_CASE("hostnames are DNS names, stored lower-case") {
  CHECK(errorsOf(R"({"hostnames": {"bad_name.example.com": "strict"}})") ==
        one("/hostnames/bad_name.example.com: key must be a DNS name"));
  CHECK(errorsOf(R"({"hostnames": {"a/b": "strict", "-a.com": "legacy", "a..b": "strict"}})") ==
        std::vector<std::string>{"/hostnames/a~1b: key must be a DNS name",
                                 "/hostnames/-a.com: key must be a DNS name",
                                 "/hostnames/a..b: key must be a DNS name"});
  CHECK(
      errorsOf(R"({"hostnames": {"smtp.example.com": "strict", "SMTP.example.COM": "legacy"}})") ==
      one("/hostnames/SMTP.example.COM: same name as /hostnames/smtp.example.com"));
  CHECK(errorsOf(R"({"hostname": "smtp example"})") == one("/hostname: must be a DNS name"));
  CHECK(isDnsName("localhost"));
  CHECK(isDnsName("a-b.example.com"));
  CHECK_FALSE(isDnsName("example.com."));
  CHECK_FALSE(isDnsName("a-.example.com"));
  CHECK_FALSE(isDnsName(std::string(64, 'a') + ".com"));
  CHECK(isDnsName(std::string(63, 'a') + ".com"));
}

TEST_CASE("by-sni with no hostnames is valid") {
  std::vector<ConfigError> errors;
  Config c =
      parseConfig(withListener(R"({"name": "a", "listen": "127.0.0.1:25", "endpoint": "by-sni"})"),
                  "/x", errors);
  CHECK(errors.empty());
  CHECK(c.hostnames.empty());
}

TEST_CASE("certificates: required with listeners, both paths required") {
  CHECK(errorsOf(R"({"listeners": [{"name": "a", "listen": "127.0.0.1:25"}]})") ==
        one("/certificates: at least one certificate is required when listeners are configured"));
  CHECK(
      errorsOf(R"({"listeners": [{"name": "a", "listen": "127.0.0.1:25"}], "certificates": []})") ==
      one("/certificates: at least one certificate is required when listeners are configured"));
  CHECK(errorsOf(R"({"certificates": [{"cert": "c.pem"}]})") ==
        one(R"(/certificates/0: "key" is required)"));
  CHECK(errorsOf(R"({"certificates": [{"cert": "", "key": "k"}]})") ==
        one("/certificates/0/cert: must not be empty"));
}

TEST_CASE("every error is reported, in document order") {
  const char* json = R"({
    "workers": 1000,
    "listeners": [
      {"name": "ok", "listen": "127.0.0.1:25"},
      {"name": "x", "listen": "127.0.0.1:99999", "tls": "ssl", "extra": true}
    ],
    "certificates": [{"cert": "c", "key": "k"}],
    "smtp": {"max_recipients": 0, "max_mesage_bytes": 5},
    "legacy_tls": {"after_cutoff": "reject", "speedbump": [{"from": "2026-02-01T00:00:00Z",
                   "reject_percent": 150}, {"from": "2026-01-01T00:00:00Z", "reject_percent": 5}]},
    "trace": {"retention_days": 0},
    "limits": {"timeouts_s": {"command": 1, "backend_conect": 10}}
  })";
  CHECK(errorsOf(json) == std::vector<std::string>{
                              "/workers: must be 0..256",
                              "/listeners/1/listen: port must be 1..65535",
                              R"(/listeners/1/tls: must be "starttls" or "implicit")",
                              "/listeners/1/extra: unknown key",
                              "/smtp/max_recipients: must be 1..10000",
                              "/smtp/max_mesage_bytes: unknown key",
                              R"(/legacy_tls/after_cutoff: must be "refuse-handshake" or "reply")",
                              "/legacy_tls/speedbump/0/reject_percent: must be 0..100",
                              "/legacy_tls/speedbump/1/from: must be later than "
                              "/legacy_tls/speedbump/0/from",
                              "/trace/retention_days: must be 1..3650",
                              "/limits/timeouts_s/command: must be 10..3600",
                              "/limits/timeouts_s/backend_conect: unknown key",
                          });
}

TEST_CASE("a key given twice is an error, not a silent override") {
  CHECK(errorsOf(R"({"workers": 1, "workers": 2})") == one("/workers: duplicate key"));
  CHECK(errorsOf(R"({"smtp": {"bare_lf": "reject", "bare_lf": "normalize"}})") ==
        one("/smtp/bare_lf: duplicate key"));
  CHECK(errorsOf(withListener(R"({"name": "a", "listen": "127.0.0.1:25"},
                                 {"name": "b", "name": "c", "listen": "127.0.0.1:26"})")) ==
        one("/listeners/1/name: duplicate key"));
  CHECK(errorsOf(R"({"hostnames": {"a.com": "strict", "a.com": "legacy"}})") ==
        one("/hostnames/a.com: duplicate key"));
}

TEST_CASE("invalid JSON is one error with line and column") {
  auto errors = errorsOf("{\n  \"workers\": 1,\n}");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "invalid JSON at line 3, column 1: syntax error while parsing object key - unexpected "
        "'}'; expected string literal");
  errors = errorsOf("");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("invalid JSON at line 1, column 1: ", 0) == 0);
  errors = errorsOf("{\"a\": 1} x");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("invalid JSON at line 1, column 10: ", 0) == 0);
}

TEST_CASE("relative paths resolve against the configuration's directory") {
  const char* json = R"({
    "state_dir": "state",
    "certificates": [{"cert": "./tls/../tls/a.pem", "key": "/abs/a.key"}],
    "backend": {"spool": "../spool", "users": "users.txt"}
  })";
  std::vector<ConfigError> errors;
  Config c = parseConfig(json, "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.stateDir == "/etc/sg/state");
  CHECK(c.certificates[0].cert == "/etc/sg/tls/a.pem");
  CHECK(c.certificates[0].key == "/abs/a.key");
  CHECK(c.spool.dir == "/etc/spool");
  CHECK(c.spool.users == "/etc/sg/users.txt");

  // An explicitly empty users file means: no AUTH.
  c = parseConfig(R"({"backend": {"spool": "s", "users": ""}})", "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.spool.users.empty());
}

TEST_CASE("loadConfigFile reads the file and resolves against its directory") {
  TempDir dir;
  dir.write("gw.json", R"({"backend": {"spool": "spool", "users": "users.txt"}})");
  std::vector<ConfigError> errors;
  Config c = loadConfigFile(dir.path + "/gw.json", errors);
  REQUIRE(errors.empty());
  CHECK(c.sourcePath == dir.path + "/gw.json");
  CHECK(c.spool.dir == dir.path + "/spool");

  errors.clear();
  loadConfigFile(dir.path + "/missing.json", errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].str() == "cannot read " + dir.path + "/missing.json: No such file or directory");

  errors.clear();
  loadConfigFile(dir.path, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].str() == "cannot read " + dir.path + ": Is a directory");
}

TEST_CASE("checkConfigFiles: spool, users file and certificates") {
  TempDir dir;
  dir.write("not-a-dir", "x");
  dir.write("users.txt", "a@example.com:$6$salt$hash\nbroken line\n");
  dir.write("garbage.pem", "not a certificate\n");
  std::vector<ConfigError> errors;
  Config c = parseConfig(R"({
    "certificates": [{"cert": "missing.pem", "key": "missing.key"},
                     {"cert": "garbage.pem", "key": "garbage.pem"}],
    "backend": {"spool": "not-a-dir", "users": "users.txt"}
  })",
                         dir.path, errors);
  REQUIRE(errors.empty());
  checkConfigFiles(c, errors);
  std::vector<std::string> got;
  for (const auto& e : errors) {
    got.push_back(e.str());
  }
  REQUIRE(got.size() == 5);
  CHECK(got[0] == "/certificates/0/cert: cannot read " + dir.path +
                      "/missing.pem: No such file or directory");
  CHECK(got[1] ==
        "/certificates/0/key: cannot read " + dir.path + "/missing.key: No such file or directory");
  CHECK(got[2].rfind("/certificates/1/cert: ", 0) == 0);
  CHECK(got[3] == "/backend/spool: " + dir.path + "/not-a-dir exists and is not a directory");
  CHECK(got[4] == "/backend/users: " + dir.path + "/users.txt line 2: expected user@domain:HASH");
}

TEST_CASE("checkConfigFiles accepts good files and creates the spool") {
  TempDir dir;
  std::string error;
  auto ecdsa = tls::makeSelfSigned(tls::KeyType::Ecdsa, {"localhost"}, 1, error);
  REQUIRE(error.empty());
  auto rsa = tls::makeSelfSigned(tls::KeyType::Rsa, {"localhost"}, 1, error);
  REQUIRE(error.empty());
  dir.write("ecdsa.pem", ecdsa.certPem);
  dir.write("ecdsa.key", ecdsa.keyPem);
  dir.write("rsa.pem", rsa.certPem);
  dir.write("rsa.key", rsa.keyPem);
  dir.write("users.txt", "# demo\na@example.com:$6$salt$hash\n");
  std::vector<ConfigError> errors;
  Config c = parseConfig(R"({
    "certificates": [{"cert": "ecdsa.pem", "key": "ecdsa.key"}, {"cert": "rsa.pem", "key": "rsa.key"}],
    "backend": {"spool": "deep/spool", "users": "users.txt"}
  })",
                         dir.path, errors);
  REQUIRE(errors.empty());
  checkConfigFiles(c, errors);
  std::string all;
  for (const auto& e : errors) {
    all += e.str() + "\n";
  }
  INFO(all);
  CHECK(errors.empty());
  CHECK(std::filesystem::is_directory(dir.path + "/deep/spool/new"));

  // A key that does not belong to the certificate.
  c.certificates = {{dir.path + "/ecdsa.pem", dir.path + "/rsa.key"}};
  checkConfigFiles(c, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/certificates/0/cert");
}

TEST_CASE("admin: listen and token_file, both required, address unique") {
  std::vector<ConfigError> errors;
  Config off = parseConfig("{}", "/etc/sg", errors);
  CHECK_FALSE(off.admin.enabled);  // no admin API unless configured

  Config c = parseConfig(R"({"admin": {"listen": "[::1]:8025", "token_file": "admin.token"}})",
                         "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.admin.enabled);
  CHECK(c.admin.listen.str() == "[::1]:8025");
  CHECK(c.admin.tokenFile == "/etc/sg/admin.token");

  CHECK(errorsOf(R"({"admin": {"listen": "127.0.0.1:8025"}})") ==
        one("/admin: \"token_file\" is required"));
  CHECK(errorsOf(R"({"admin": {"token_file": "t"}})") == one("/admin: \"listen\" is required"));
  CHECK(errorsOf(R"({"admin": {"listen": "127.0.0.1:0", "token_file": "t"}})") ==
        one("/admin/listen: port must be 1..65535"));
  CHECK(errorsOf(R"({"admin": {"listen": "127.0.0.1:25", "token_file": "t", "x": 1}})") ==
        one("/admin/x: unknown key"));
  CHECK(errorsOf(R"({"certificates": [{"cert": "c.pem", "key": "c.key"}],
                     "listeners": [{"name": "a", "listen": "127.0.0.1:25"}],
                     "admin": {"listen": "127.0.0.1:25", "token_file": "t"}})") ==
        one("/admin/listen: duplicate address 127.0.0.1:25 (also /listeners/0/listen)"));
}

TEST_CASE("admin token file: one printable line of at least 16 characters") {
  testing::TempDir dir;
  std::string error;
  dir.write("good", "  0123456789abcdef0123  \nsecond line ignored\n");
  CHECK(readAdminToken(dir.path + "/good", error) == "0123456789abcdef0123");
  dir.write("short", "0123456789\n");
  CHECK(readAdminToken(dir.path + "/short", error).empty());
  CHECK(error == dir.path + "/short: the token must be at least 16 characters");
  dir.write("space", "0123456789 abcdef0123\n");
  CHECK(readAdminToken(dir.path + "/space", error).empty());
  CHECK(error == dir.path + "/space: the token must be printable ASCII without spaces");
  CHECK(readAdminToken(dir.path + "/missing", error).empty());
  CHECK(error.find("cannot read " + dir.path + "/missing") == 0);

  std::vector<ConfigError> errors;
  Config c = parseConfig(R"({"admin": {"listen": "127.0.0.1:8025", "token_file": "short"}})",
                         dir.path, errors);
  REQUIRE(errors.empty());
  checkConfigFiles(c, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].str() ==
        "/admin/token_file: " + dir.path + "/short: the token must be at least 16 characters");
}

TEST_CASE("user: a user name, checked against the system's users") {
  std::vector<ConfigError> errors;
  Config c = parseConfig(R"({"user": "nobody"})", "/etc/sg", errors);
  REQUIRE(errors.empty());
  CHECK(c.user == "nobody");
  checkConfigFiles(c, errors);
  CHECK(errors.empty());
  CHECK(errorsOf(R"({"user": "Root"})") ==
        one("/user: must be a user name (lower-case letters, digits, \"_\" or \"-\", at most 32)"));
  CHECK(errorsOf(R"({"user": ""})").size() == 1);
  Config missing = parseConfig(R"({"user": "smtpgate-no-such-user"})", "/etc/sg", errors);
  REQUIRE(errors.empty());
  checkConfigFiles(missing, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].str() == "/user: no such user \"smtpgate-no-such-user\"");
}
