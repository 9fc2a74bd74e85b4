// libFuzzer target: the PROXY protocol header toward the backend (gateway/smtp/proxy_header.h)
// and, under it, policy::IpAddress.
//
// smtpgate writes PROXY headers (it never accepts them from clients), so the target turns the
// input into a ProxyInfo and checks what proxyV1()/proxyV2() make of it with an independent,
// strict reader of HAProxy's doc/proxy-protocol.txt. The input is either a PROXY header itself
// (v1 text or v2 binary, read leniently: this is how the seed corpus holds real headers) or the
// fields one per line: client ip, client port, server ip, server port, TLS version, cipher, SNI.
//
// Checked: v1 is one CRLF line of at most 107 octets, "PROXY UNKNOWN" exactly when the addresses
// cannot be used, else TCP4/TCP6 with addresses inet_pton accepts in that family and equal to the
// given ones, ports as given; v2 has the signature, command PROXY, a family matching v1, a length
// that covers exactly the address block and well-formed TLVs, the SNI and TLS facts in them as
// documented (values over 255 octets left out); both agree on the addresses.

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/proxy_header.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace smtpgate::smtp;
constexpr const char* kTarget = "fuzz_proxy_header";
constexpr std::string_view kSig("\r\n\r\n\0\r\nQUIT\n", 12);

std::uint16_t portOf(std::string_view s) {
  unsigned v = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') v = (v * 10 + static_cast<unsigned>(c - '0')) % 65536;
  }
  return static_cast<std::uint16_t>(v);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t end = s.find(sep, pos);
    out.push_back(s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return out;
}

std::string addrText(int family, const std::uint8_t* bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes, buf, sizeof buf);
  return buf;
}

unsigned be16(std::string_view s, std::size_t at) {
  return (static_cast<unsigned>(static_cast<std::uint8_t>(s[at])) << 8) |
         static_cast<std::uint8_t>(s[at + 1]);
}

// A real header read leniently into the facts it carries (the seed corpus format).
ProxyInfo fromInput(std::string_view in) {
  ProxyInfo info;
  if (in.rfind("PROXY ", 0) == 0) {
    std::string_view line = in.substr(0, in.find('\r'));
    std::vector<std::string_view> f = split(line, ' ');
    if (f.size() > 2) info.clientIp = f[2];
    if (f.size() > 3) info.serverIp = f[3];
    if (f.size() > 4) info.clientPort = portOf(f[4]);
    if (f.size() > 5) info.serverPort = portOf(f[5]);
    // Anything after the line: TLS facts, one per line, as in the field format.
    std::vector<std::string_view> rest = split(in.substr(std::min(in.size(), line.size() + 2)), '\n');
    if (rest.size() > 0) info.tlsVersion = rest[0];
    if (rest.size() > 1) info.tlsCipher = rest[1];
    if (rest.size() > 2) info.sni = rest[2];
    return info;
  }
  if (in.rfind(kSig, 0) == 0 && in.size() >= 16) {
    const std::uint8_t fam = static_cast<std::uint8_t>(in[13]);
    std::string_view body = in.substr(16, be16(in, 14));
    std::size_t at = 0;
    if ((fam >> 4) == 1 && body.size() >= 12) {
      info.clientIp = addrText(AF_INET, reinterpret_cast<const std::uint8_t*>(body.data()));
      info.serverIp = addrText(AF_INET, reinterpret_cast<const std::uint8_t*>(body.data() + 4));
      info.clientPort = static_cast<std::uint16_t>(be16(body, 8));
      info.serverPort = static_cast<std::uint16_t>(be16(body, 10));
      at = 12;
    } else if ((fam >> 4) == 2 && body.size() >= 36) {
      info.clientIp = addrText(AF_INET6, reinterpret_cast<const std::uint8_t*>(body.data()));
      info.serverIp = addrText(AF_INET6, reinterpret_cast<const std::uint8_t*>(body.data() + 16));
      info.clientPort = static_cast<std::uint16_t>(be16(body, 32));
      info.serverPort = static_cast<std::uint16_t>(be16(body, 34));
      at = 36;
    }
    while (at + 3 <= body.size()) {
      const std::uint8_t type = static_cast<std::uint8_t>(body[at]);
      std::string_view value = body.substr(at + 3, be16(body, at + 1));
      at += 3 + value.size();
      if (type == 0x02) {
        info.sni = value;
      } else if (type == 0x20 && value.size() >= 5) {
        std::size_t sub = 5;
        while (sub + 3 <= value.size()) {
          const std::uint8_t st = static_cast<std::uint8_t>(value[sub]);
          std::string_view sv = value.substr(sub + 3, be16(value, sub + 1));
          sub += 3 + sv.size();
          if (st == 0x21) info.tlsVersion = sv;
          if (st == 0x23) info.tlsCipher = sv;
        }
        if (info.tlsVersion.empty()) info.tlsVersion = "TLSv1.2";
      }
    }
    return info;
  }
  std::vector<std::string_view> f = split(in, '\n');
  if (f.size() > 0) info.clientIp = f[0];
  if (f.size() > 1) info.clientPort = portOf(f[1]);
  if (f.size() > 2) info.serverIp = f[2];
  if (f.size() > 3) info.serverPort = portOf(f[3]);
  if (f.size() > 4) info.tlsVersion = f[4];
  if (f.size() > 5) info.tlsCipher = f[5];
  if (f.size() > 6) info.sni = f[6];
  return info;
}

struct Endpoint {
  bool v6 = false;
  std::uint8_t bytes[16] = {};
  bool operator==(const Endpoint& o) const {
    return v6 == o.v6 && std::memcmp(bytes, o.bytes, v6 ? 16 : 4) == 0;
  }
};

// The address as the header must carry it: IPv4 (also from ::ffff:a.b.c.d), or IPv6.
std::optional<Endpoint> expectAddress(const std::string& text) {
  std::optional<IpAddress> ip = IpAddress::parse(text);
  if (!ip) return std::nullopt;
  // IpAddress itself: its canonical text parses back to the same address.
  std::optional<IpAddress> again = IpAddress::parse(ip->str());
  FUZZ_CHECK(again && again->v6 == ip->v6 && again->bytes == ip->bytes, text);
  Endpoint e;
  e.v6 = ip->v6;
  std::memcpy(e.bytes, ip->bytes.data(), 16);
  return e;
}

Endpoint mapped(const Endpoint& e) {
  if (e.v6) return e;
  Endpoint m;
  m.v6 = true;
  m.bytes[10] = m.bytes[11] = 0xff;
  std::memcpy(m.bytes + 12, e.bytes, 4);
  return m;
}

bool decimalPort(std::string_view s, std::uint16_t want) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v == want;
}

void check(const ProxyInfo& info) {
  std::optional<Endpoint> client = expectAddress(info.clientIp);
  std::optional<Endpoint> server;
  bool usable = client.has_value();
  if (usable) {
    if (info.serverIp.empty()) {
      server = Endpoint{};
      server->v6 = client->v6;
    } else {
      server = expectAddress(info.serverIp);
      usable = server.has_value();
    }
  }
  if (usable && client->v6 != server->v6) {
    client = mapped(*client);
    server = mapped(*server);
  }

  // Version 1.
  const ProxyHeader v1 = proxyV1(info);
  const std::string& t = v1.bytes;
  FUZZ_CHECK(v1.addressesKnown == usable, t);
  FUZZ_CHECK(t.size() <= 107 && t.ends_with("\r\n"), t);
  FUZZ_CHECK(t.find_first_of(std::string_view("\r\n\0", 3)) == t.size() - 2, t);
  if (!usable) {
    FUZZ_CHECK(t == "PROXY UNKNOWN\r\n", t);
  } else {
    std::vector<std::string_view> f = split(std::string_view(t).substr(0, t.size() - 2), ' ');
    FUZZ_CHECK(f.size() == 6 && f[0] == "PROXY", t);
    FUZZ_CHECK(f[1] == (client->v6 ? "TCP6" : "TCP4"), t);
    const int family = client->v6 ? AF_INET6 : AF_INET;
    Endpoint c, s;
    c.v6 = s.v6 = client->v6;
    FUZZ_CHECK(inet_pton(family, std::string(f[2]).c_str(), c.bytes) == 1, t);
    FUZZ_CHECK(inet_pton(family, std::string(f[3]).c_str(), s.bytes) == 1, t);
    FUZZ_CHECK(c == *client && s == *server, t);
    FUZZ_CHECK(decimalPort(f[4], info.clientPort) && decimalPort(f[5], info.serverPort), t);
  }

  // Version 2.
  const ProxyHeader v2 = proxyV2(info);
  const std::string& b = v2.bytes;
  FUZZ_CHECK(v2.addressesKnown == usable, b);
  FUZZ_CHECK(b.size() >= 16 && b.rfind(kSig, 0) == 0, b);
  FUZZ_CHECK(static_cast<std::uint8_t>(b[12]) == 0x21, b);
  const std::uint8_t fam = static_cast<std::uint8_t>(b[13]);
  FUZZ_CHECK(be16(b, 14) == b.size() - 16, b);
  std::string_view body = std::string_view(b).substr(16);
  std::size_t at = 0;
  if (!usable) {
    FUZZ_CHECK(fam == 0x00, b);
  } else {
    FUZZ_CHECK(fam == (client->v6 ? 0x21 : 0x11), b);
    const std::size_t n = client->v6 ? 16 : 4;
    FUZZ_CHECK(body.size() >= 4 + 2 * n, b);
    FUZZ_CHECK(std::memcmp(body.data(), client->bytes, n) == 0, b);
    FUZZ_CHECK(std::memcmp(body.data() + n, server->bytes, n) == 0, b);
    FUZZ_CHECK(be16(body, 2 * n) == info.clientPort && be16(body, 2 * n + 2) == info.serverPort, b);
    at = 2 * n + 4;
  }
  bool sawAuthority = false, sawSsl = false;
  while (at < body.size()) {
    FUZZ_CHECK(at + 3 <= body.size(), b);
    const std::uint8_t type = static_cast<std::uint8_t>(body[at]);
    const std::size_t len = be16(body, at + 1);
    FUZZ_CHECK(at + 3 + len <= body.size(), b);
    const std::string_view value = body.substr(at + 3, len);
    at += 3 + len;
    if (type == 0x02) {
      FUZZ_CHECK(!sawAuthority && value == info.sni, b);
      sawAuthority = true;
    } else if (type == 0x20) {
      FUZZ_CHECK(!sawSsl && value.size() >= 5, b);
      sawSsl = true;
      FUZZ_CHECK(value[0] == 0x01 && value.substr(1, 4) == std::string_view("\0\0\0\0", 4), b);
      bool sawVersion = false, sawCipher = false;
      std::size_t sub = 5;
      while (sub < value.size()) {
        FUZZ_CHECK(sub + 3 <= value.size(), b);
        const std::uint8_t st = static_cast<std::uint8_t>(value[sub]);
        const std::size_t sl = be16(value, sub + 1);
        FUZZ_CHECK(sub + 3 + sl <= value.size(), b);
        const std::string_view sv = value.substr(sub + 3, sl);
        sub += 3 + sl;
        if (st == 0x21) {
          FUZZ_CHECK(!sawVersion && sv == info.tlsVersion, b);
          sawVersion = true;
        } else if (st == 0x23) {
          FUZZ_CHECK(!sawCipher && sv == info.tlsCipher, b);
          sawCipher = true;
        } else {
          smtpgate::fuzz::fail(kTarget, "unexpected SSL sub-TLV", b);
        }
      }
      FUZZ_CHECK(sawVersion == (info.tlsVersion.size() <= 255), b);
      FUZZ_CHECK(sawCipher == (!info.tlsCipher.empty() && info.tlsCipher.size() <= 255), b);
    } else {
      smtpgate::fuzz::fail(kTarget, "unexpected TLV", b);
    }
  }
  FUZZ_CHECK(sawAuthority == (!info.sni.empty() && info.sni.size() <= 255), b);
  FUZZ_CHECK(sawSsl == !info.tlsVersion.empty(), b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) {
    return -1;
  }
  check(fromInput(std::string_view(reinterpret_cast<const char*>(data), size)));
  return 0;
}
