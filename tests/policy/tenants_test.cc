// CIDRs, tenant exceptions, the tenant directory and domainOf.
#include "policy/tenants.h"

#include <catch2/catch.hpp>
#include <cctype>

using namespace smtpgate::policy;

namespace {

Cidr cidr(std::string_view text) {
  std::optional<Cidr> c = Cidr::parse(text);
  INFO(text);
  REQUIRE(c);
  return *c;
}

ClientIdentity client(std::string ip, std::string user = {}, std::string ehlo = {},
                      std::string cert = {}) {
  return ClientIdentity{std::move(ip), std::move(user), std::move(ehlo), std::move(cert)};
}

TenantException made(TenantException::Kind kind, std::string_view value,
                     std::optional<int64_t> expires = std::nullopt) {
  std::string error;
  auto e = TenantException::make(kind, value, expires, "test", &error);
  INFO(error);
  REQUIRE(e);
  return *e;
}

Tenant tenant(std::string id, std::vector<std::string> domains) {
  Tenant t;
  t.id = std::move(id);
  t.domains = std::move(domains);
  return t;
}

const std::string kCert = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("CIDR: IPv4 networks, bare addresses and host bits") {
  CHECK(cidr("192.0.2.0/24").str() == "192.0.2.0/24");
  CHECK(cidr("192.0.2.10").str() == "192.0.2.10/32");
  CHECK(cidr("192.0.2.10/24").str() == "192.0.2.0/24");  // host bits masked, as admins mean it
  CHECK(cidr("0.0.0.0/0").str() == "0.0.0.0/0");

  const Cidr net = cidr("192.0.2.10/24");
  CHECK(net.contains("192.0.2.0"));
  CHECK(net.contains("192.0.2.255"));
  CHECK_FALSE(net.contains("192.0.3.0"));
  CHECK_FALSE(net.contains("192.0.1.255"));

  const Cidr odd = cidr("10.0.0.0/9");
  CHECK(odd.contains("10.127.255.255"));
  CHECK_FALSE(odd.contains("10.128.0.0"));

  const Cidr host = cidr("192.0.2.10");
  CHECK(host.contains("192.0.2.10"));
  CHECK_FALSE(host.contains("192.0.2.11"));

  CHECK(cidr("0.0.0.0/0").contains("203.0.113.9"));
  CHECK_FALSE(cidr("0.0.0.0/0").contains("2001:db8::1"));
}

TEST_CASE("CIDR: IPv6 networks") {
  const Cidr net = cidr("2001:db8::/32");
  CHECK(net.str() == "2001:db8::/32");
  CHECK(net.contains("2001:db8:1::5"));
  CHECK(net.contains("2001:DB8:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK_FALSE(net.contains("2001:db9::1"));
  CHECK_FALSE(net.contains("192.0.2.1"));

  CHECK(cidr("::1").str() == "::1/128");
  CHECK(cidr("::1").contains("::1"));
  CHECK_FALSE(cidr("::1").contains("::2"));
  CHECK(cidr("2001:db8::ff/120").str() == "2001:db8::/120");
  CHECK(cidr("2001:db8::/127").contains("2001:db8::1"));
  CHECK_FALSE(cidr("2001:db8::/127").contains("2001:db8::2"));
  CHECK_FALSE(cidr("::/0").contains("192.0.2.1"));
  CHECK(cidr("::/0").contains("fe80::1"));
}

TEST_CASE("CIDR: IPv4-mapped IPv6 clients match IPv4 networks") {
  const Cidr net = cidr("192.0.2.0/24");
  CHECK(net.contains("::ffff:192.0.2.10"));
  CHECK(net.contains("::FFFF:c000:0205"));
  CHECK_FALSE(net.contains("::ffff:198.51.100.1"));
  // A mapped network is an IPv4 network: it matches both spellings of a client.
  const Cidr mapped = cidr("::ffff:192.0.2.0/120");
  CHECK(mapped.str() == "192.0.2.0/24");
  CHECK(mapped.contains("192.0.2.7"));
  CHECK(mapped.contains("::ffff:192.0.2.7"));
  CHECK_FALSE(cidr("2001:db8::/32").contains("::ffff:192.0.2.10"));
}

TEST_CASE("CIDR: malformed networks and addresses are refused") {
  for (const char* bad :
       {"", "abc", "192.0.2.0/33", "/24", "192.0.2.0/", "192.0.2/24", "256.0.0.0/8", "192.0.2.0/-1",
        "192.0.2.0/+8", "192.0.2.0/24 ", " 192.0.2.0/24", "192.0.2.0/2x", "192.0.2.0/1000",
        "2001:db8::/129", "2001:db8:::/32", "[2001:db8::]/32", "fe80::1%eth0", "192.0.2.0/24/8",
        "0192.0.2.0/24"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad));
  }
  const Cidr net = cidr("192.0.2.0/24");
  for (const char* ip : {"", "not-an-ip", "192.0.2.1/32", "192.0.2", "192.0.2.1 "}) {
    INFO(ip);
    CHECK_FALSE(net.contains(ip));
  }
  Cidr broken = net;
  broken.prefix = 40;  // hand-built and out of range: matches nothing
  CHECK_FALSE(broken.contains("192.0.2.1"));
}

TEST_CASE("exceptions: each kind matches its own field") {
  SECTION("client CIDR") {
    const TenantException e = made(TenantException::Kind::Client, "192.0.2.10/24");
    CHECK(e.value == "192.0.2.0/24");
    CHECK(e.matches(client("192.0.2.99"), 0));
    CHECK(e.matches(client("::ffff:192.0.2.99"), 0));
    CHECK_FALSE(e.matches(client("192.0.3.1"), 0));
    const TenantException v6 = made(TenantException::Kind::Client, "2001:db8::/32");
    CHECK(v6.matches(client("2001:db8:1::5"), 0));
    CHECK_FALSE(v6.matches(client("2001:db9::1"), 0));
  }
  SECTION("AUTH user, case-insensitively") {
    const TenantException e = made(TenantException::Kind::User, "Printer@Contoso.COM");
    CHECK(e.value == "printer@contoso.com");
    CHECK(e.matches(client("198.51.100.1", "printer@contoso.com"), 0));
    CHECK(e.matches(client("198.51.100.1", "PRINTER@contoso.com"), 0));
    CHECK_FALSE(e.matches(client("198.51.100.1", "printer@contoso.org"), 0));
    CHECK_FALSE(e.matches(client("198.51.100.1", ""), 0));
  }
  SECTION("EHLO name, case-insensitively") {
    const TenantException e = made(TenantException::Kind::Ehlo, "scanner.contoso.com");
    CHECK(e.matches(client("198.51.100.1", "", "Scanner.Contoso.Com"), 0));
    CHECK_FALSE(e.matches(client("198.51.100.1", "", "scanner"), 0));
    CHECK_FALSE(e.matches(client("198.51.100.1", "", ""), 0));
  }
  SECTION("client certificate SHA-256, colons and case normalised") {
    std::string withColons;
    for (std::size_t i = 0; i < kCert.size(); i += 2) {
      withColons += (i ? ":" : "") + kCert.substr(i, 2);
    }
    for (char& c : withColons) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    const TenantException e = made(TenantException::Kind::CertSha256, withColons);
    CHECK(e.value == kCert);
    CHECK(e.matches(client("198.51.100.1", "", "", kCert), 0));
    CHECK_FALSE(e.matches(client("198.51.100.1", "", "", std::string(64, '0')), 0));
    CHECK_FALSE(e.matches(client("198.51.100.1", "", "", ""), 0));
  }
  SECTION("a kind does not match another kind's field") {
    const TenantException user = made(TenantException::Kind::User, "scanner.contoso.com");
    CHECK_FALSE(user.matches(client("198.51.100.1", "", "scanner.contoso.com"), 0));
  }
}

TEST_CASE("exceptions: apply while now < expires") {
  constexpr int64_t kExpires = 1806451200;  // 2027-04-01T00:00:00Z
  const TenantException e = made(TenantException::Kind::Client, "192.0.2.10", kExpires);
  CHECK(e.matches(client("192.0.2.10"), kExpires - 1));
  CHECK_FALSE(e.matches(client("192.0.2.10"), kExpires));
  CHECK_FALSE(e.matches(client("192.0.2.10"), kExpires + 1));
  const TenantException forever = made(TenantException::Kind::Client, "192.0.2.10");
  CHECK(forever.matches(client("192.0.2.10"), kExpires * 10));

  Tenant t = tenant("contoso", {"contoso.com"});
  t.exceptions = {e, made(TenantException::Kind::Ehlo, "scanner", kExpires + 100)};
  const ClientIdentity both = client("192.0.2.10", "", "scanner");
  CHECK(t.matchingException(both, kExpires - 1) == &t.exceptions[0]);  // the first that matches
  CHECK(t.matchingException(both, kExpires) == &t.exceptions[1]);      // the first has expired
  CHECK(t.matchingException(both, kExpires + 100) == nullptr);
}

TEST_CASE("exceptions: make refuses bad values, hand-built ones fail closed") {
  std::string error;
  CHECK_FALSE(TenantException::make(TenantException::Kind::Client, "192.0.2.0/33", {}, {}, &error));
  CHECK_FALSE(error.empty());
  for (const std::string& bad : {std::string(), std::string("abc"), std::string(63, 'a')}) {
    CHECK_FALSE(TenantException::make(TenantException::Kind::CertSha256, bad));
  }
  CHECK_FALSE(TenantException::make(TenantException::Kind::CertSha256, std::string(65, 'a')));
  CHECK_FALSE(TenantException::make(TenantException::Kind::CertSha256, std::string(64, 'g')));
  CHECK_FALSE(TenantException::make(TenantException::Kind::User, ""));
  CHECK_FALSE(TenantException::make(TenantException::Kind::Ehlo, ""));

  // A loader that sets only `value` must not get a default (0.0.0.0/0) network.
  TenantException handBuilt;
  handBuilt.kind = TenantException::Kind::Client;
  handBuilt.value = "192.0.2.10/32";
  CHECK(handBuilt.matches(client("192.0.2.10"), 0));
  CHECK_FALSE(handBuilt.matches(client("198.51.100.1"), 0));
  handBuilt.value.clear();
  CHECK_FALSE(handBuilt.matches(client("198.51.100.1"), 0));
  TenantException emptyUser;
  emptyUser.kind = TenantException::Kind::User;
  CHECK_FALSE(emptyUser.matches(client("198.51.100.1"), 0));
}

TEST_CASE("directory: lookup by domain and id") {
  TenantDirectory d;
  REQUIRE(d.add(tenant("contoso", {"Contoso.COM", "contoso.org."})));
  REQUIRE(d.add(tenant("fabrikam", {"fabrikam.com"})));
  CHECK(d.all().size() == 2);
  CHECK(d.byId("contoso")->domains == std::vector<std::string>{"contoso.com", "contoso.org"});
  CHECK(d.forDomain("contoso.com")->id == "contoso");
  CHECK(d.forDomain("CONTOSO.ORG")->id == "contoso");
  CHECK(d.forDomain("contoso.org.")->id == "contoso");
  CHECK(d.forDomain("fabrikam.com")->id == "fabrikam");
  CHECK(d.forDomain("sub.contoso.com") == nullptr);  // exact domains only
  CHECK(d.forDomain("contoso.com..") == nullptr);    // one trailing dot, not more
  CHECK(d.forDomain("") == nullptr);
  CHECK(d.byId("fabrikam")->id == "fabrikam");
  CHECK(d.byId("Fabrikam") == nullptr);
  CHECK(d.byId("nobody") == nullptr);

  const TenantDirectory copy = d;  // runtimes are rebuilt and copied on reload
  CHECK(copy.forDomain("contoso.com") == &copy.all()[0]);
}

TEST_CASE("directory: conflicts are refused, named, and add nothing") {
  TenantDirectory d;
  REQUIRE(d.add(tenant("contoso", {"contoso.com"})));
  std::string conflict;

  CHECK_FALSE(d.add(tenant("contoso", {"other.example"}), &conflict));
  CHECK(conflict.find("contoso") != std::string::npos);
  CHECK(d.forDomain("other.example") == nullptr);

  conflict.clear();
  CHECK_FALSE(d.add(tenant("fabrikam", {"fabrikam.com", "CONTOSO.com."}), &conflict));
  CHECK(conflict.find("contoso.com") != std::string::npos);
  CHECK(conflict.find("\"contoso\"") != std::string::npos);
  CHECK(d.forDomain("fabrikam.com") == nullptr);
  CHECK(d.byId("fabrikam") == nullptr);

  conflict.clear();
  CHECK_FALSE(d.add(tenant("tailspin", {"tailspin.com", "Tailspin.com"}), &conflict));
  CHECK(conflict.find("tailspin.com") != std::string::npos);
  CHECK(d.byId("tailspin") == nullptr);

  CHECK_FALSE(d.add(tenant("", {"nobody.example"}), &conflict));
  CHECK_FALSE(d.add(tenant("dotty", {"."}), &conflict));
  CHECK(d.all().size() == 1);
  CHECK(d.add(tenant("fabrikam", {"fabrikam.com"})));
}

TEST_CASE("domainOf: the part after the last @, lower-cased") {
  CHECK(domainOf("User@Example.COM") == "example.com");
  CHECK(domainOf("\"a@b\"@Example.org") == "example.org");
  CHECK(domainOf("<alice@contoso.com>") == "contoso.com");
  CHECK(domainOf("user@[192.0.2.1]") == "[192.0.2.1]");
  CHECK(domainOf("printer").empty());
  CHECK(domainOf("user@").empty());
  CHECK(domainOf("").empty());
  CHECK(normalizeDomain("Example.COM.") == "example.com");
  CHECK(normalizeCertSha256("AB:cd") == std::nullopt);
}
