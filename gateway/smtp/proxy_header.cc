#include "gateway/smtp/proxy_header.h"

#include <arpa/inet.h>

namespace smtpgate::smtp {

namespace {

constexpr std::uint8_t kV2VersionProxy = 0x21;  // version 2, command PROXY
constexpr std::uint8_t kV2Unspec = 0x00;
constexpr std::uint8_t kV2TcpV4 = 0x11;
constexpr std::uint8_t kV2TcpV6 = 0x21;
constexpr std::uint8_t kTypeAuthority = 0x02;
constexpr std::uint8_t kTypeSsl = 0x20;
constexpr std::uint8_t kSubtypeSslVersion = 0x21;
constexpr std::uint8_t kSubtypeSslCipher = 0x23;
constexpr std::uint8_t kClientSsl = 0x01;
constexpr std::size_t kMaxTlvValue = 255;

struct Endpoints {
  IpAddress client;
  IpAddress server;
};

// Both addresses in one family, or nullopt when they cannot be sent (see proxy_header.h).
std::optional<Endpoints> endpoints(const ProxyInfo& info) {
  std::optional<IpAddress> client = IpAddress::parse(info.clientIp);
  if (!client) {
    return std::nullopt;
  }
  IpAddress server;
  server.v6 = client->v6;  // unspecified address of the client's family
  if (!info.serverIp.empty()) {
    std::optional<IpAddress> parsed = IpAddress::parse(info.serverIp);
    if (!parsed) {
      return std::nullopt;
    }
    server = *parsed;
  }
  if (client->v6 != server.v6) {
    return Endpoints{client->asV6(), server.asV6()};
  }
  return Endpoints{*client, server};
}

void put16(std::string& out, std::size_t value) {
  out += static_cast<char>((value >> 8) & 0xff);
  out += static_cast<char>(value & 0xff);
}

void putTlv(std::string& out, std::uint8_t type, std::string_view value) {
  out += static_cast<char>(type);
  put16(out, value.size());
  out.append(value);
}

}  // namespace

ProxyHeader proxyV1(const ProxyInfo& info) {
  ProxyHeader header;
  std::optional<Endpoints> ends = endpoints(info);
  if (!ends) {
    header.bytes = "PROXY UNKNOWN\r\n";
    return header;
  }
  header.addressesKnown = true;
  // str() of a mapped address is "::ffff:a.b.c.d", which TCP6 receivers accept.
  header.bytes = std::string("PROXY ") + (ends->client.v6 ? "TCP6 " : "TCP4 ") +
                 ends->client.str() + ' ' + ends->server.str() + ' ' +
                 std::to_string(info.clientPort) + ' ' + std::to_string(info.serverPort) + "\r\n";
  return header;
}

ProxyHeader proxyV2(const ProxyInfo& info) {
  ProxyHeader header;
  std::optional<Endpoints> ends = endpoints(info);
  header.addressesKnown = ends.has_value();

  std::string body;
  std::uint8_t family = kV2Unspec;
  if (ends) {
    family = ends->client.v6 ? kV2TcpV6 : kV2TcpV4;
    const std::size_t n = ends->client.v6 ? 16 : 4;
    body.append(reinterpret_cast<const char*>(ends->client.bytes.data()), n);
    body.append(reinterpret_cast<const char*>(ends->server.bytes.data()), n);
    put16(body, info.clientPort);
    put16(body, info.serverPort);
  }
  if (!info.sni.empty() && info.sni.size() <= kMaxTlvValue) {
    putTlv(body, kTypeAuthority, info.sni);
  }
  if (!info.tlsVersion.empty()) {
    std::string ssl;
    ssl += static_cast<char>(kClientSsl);
    ssl.append(4, '\0');  // verify: 0, no client certificate is involved
    if (info.tlsVersion.size() <= kMaxTlvValue) {
      putTlv(ssl, kSubtypeSslVersion, info.tlsVersion);
    }
    if (!info.tlsCipher.empty() && info.tlsCipher.size() <= kMaxTlvValue) {
      putTlv(ssl, kSubtypeSslCipher, info.tlsCipher);
    }
    putTlv(body, kTypeSsl, ssl);
  }

  header.bytes.assign(kProxyV2Signature);
  header.bytes += static_cast<char>(kV2VersionProxy);
  header.bytes += static_cast<char>(family);
  put16(header.bytes, body.size());
  header.bytes += body;
  return header;
}

}  // namespace smtpgate::smtp
