#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace smtpgate::smtp {

// What a PROXY header in front of a client connection said (haproxy doc/proxy-protocol.txt).
struct ProxySource {
  int version = 0;       // 1 or 2
  // False for v2 LOCAL (a load balancer's own health check), v1 UNKNOWN, and v2 PROXY with an
  // address family we cannot use (AF_UNSPEC, AF_UNIX): the connection's own address stands.
  bool hasAddress = false;
  bool local = false;    // v2 command LOCAL
  std::string clientIp;  // canonical text; IPv4-mapped IPv6 is read as IPv4
  std::uint16_t clientPort = 0;
  std::string serverIp;  // the address the client connected to (the load balancer's front)
  std::uint16_t serverPort = 0;
};

// Reads the PROXY v1 or v2 header a trusted load balancer sends before anything else, sans IO:
// bytes in as they arrive, a verdict out. Bounded: v1 is at most 107 octets with its CRLF, v2 is
// 16 octets plus at most kMaxV2Length; nothing beyond the header is ever buffered except the
// bytes of the read that completed it (remainder()), which belong to the session (a TLS
// ClientHello, an early command).
class ProxyParser {
 public:
  enum class Status { NeedMore, Done, Error };
  static constexpr std::size_t kMaxV1Bytes = 107;
  // The address block plus TLVs of a v2 header. HAProxy's own TLVs (SSL facts, unique id,
  // authority, AWS/Azure/GCP ids) fit in far less; more is not a header we want to hold.
  static constexpr std::size_t kMaxV2Length = 2048;

  Status feed(std::string_view bytes);
  Status status() const { return status_; }
  // Valid once Done.
  const ProxySource& source() const { return source_; }
  // Bytes after the header in the reads fed so far (only once Done).
  std::string_view remainder() const;
  // Why the header was refused ("not a PROXY protocol header", "v1 header longer than 107
  // bytes", ...), once Error.
  const std::string& error() const { return error_; }

 private:
  Status fail(std::string message);
  Status parseV1(std::size_t lineEnd);
  Status parseV2();

  Status status_ = Status::NeedMore;
  std::string buffer_;
  std::size_t headerLength_ = 0;
  ProxySource source_;
  std::string error_;
};

}  // namespace smtpgate::smtp
