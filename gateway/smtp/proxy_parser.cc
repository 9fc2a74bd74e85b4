#include "gateway/smtp/proxy_parser.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <optional>

#include "gateway/smtp/proxy_header.h"
#include "policy/ip_address.h"

namespace smtpgate::smtp {
namespace {

// proxy-protocol.txt §2.1 and §2.2.
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature = kProxyV2Signature;
constexpr std::size_t kV2HeaderBytes = 16;
constexpr std::size_t kV2Inet = 12;   // 2 x 4 address bytes, 2 x 2 port bytes
constexpr std::size_t kV2Inet6 = 36;  // 2 x 16, 2 x 2
constexpr std::size_t kV2Unix = 216;  // 2 x 108
constexpr std::uint8_t kCommandLocal = 0x0;
constexpr std::uint8_t kCommandProxy = 0x1;
constexpr std::uint8_t kFamilyUnspec = 0x0;
constexpr std::uint8_t kFamilyInet = 0x1;
constexpr std::uint8_t kFamilyInet6 = 0x2;
constexpr std::uint8_t kFamilyUnix = 0x3;
constexpr std::uint8_t kTransportStream = 0x1;

unsigned be16(std::string_view s, std::size_t at) {
  return (static_cast<unsigned>(static_cast<std::uint8_t>(s[at])) << 8) |
         static_cast<std::uint8_t>(s[at + 1]);
}

// True when `have` is a prefix of `full` or `full` a prefix of `have`.
bool agrees(std::string_view have, std::string_view full) {
  const std::size_t n = std::min(have.size(), full.size());
  return have.substr(0, n) == full.substr(0, n);
}

// "0".."65535" in decimal, no sign, no leading zero.
std::optional<std::uint16_t> parsePort(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  unsigned value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

// An address of exactly the family the header names, in canonical text.
std::optional<std::string> parseAddress(std::string_view s, bool v6) {
  if (s.empty() || s.size() > 45) {
    return std::nullopt;
  }
  std::array<std::uint8_t, 16> binary{};
  const std::string copy(s);
  if (inet_pton(v6 ? AF_INET6 : AF_INET, copy.c_str(), binary.data()) != 1) {
    return std::nullopt;
  }
  std::optional<policy::IpAddress> ip = policy::IpAddress::parse(copy);
  if (!ip) {
    return std::nullopt;
  }
  return ip->str();
}

std::string addressFromBytes(std::string_view block, bool v6) {
  policy::IpAddress ip;
  ip.v6 = v6;
  std::copy_n(reinterpret_cast<const std::uint8_t*>(block.data()), v6 ? 16 : 4, ip.bytes.begin());
  // Through the text form so that an IPv4-mapped address becomes the IPv4 client it is.
  std::optional<policy::IpAddress> canonical = policy::IpAddress::parse(ip.str());
  return canonical ? canonical->str() : ip.str();
}

}  // namespace

ProxyParser::Status ProxyParser::fail(std::string message) {
  error_ = std::move(message);
  status_ = Status::Error;
  return status_;
}

std::string_view ProxyParser::remainder() const {
  if (status_ != Status::Done) {
    return {};
  }
  return std::string_view(buffer_).substr(headerLength_);
}

ProxyParser::Status ProxyParser::feed(std::string_view bytes) {
  if (status_ != Status::NeedMore) {
    return status_;  // the verdict stands; later bytes are the session's business
  }
  while (status_ == Status::NeedMore && !bytes.empty()) {
    if (buffer_.empty()) {
      if (bytes[0] != kV1Prefix[0] && bytes[0] != kV2Signature[0]) {
        return fail("not a PROXY protocol header");
      }
    }
    const bool v2 = buffer_.empty() ? bytes[0] == kV2Signature[0] : buffer_[0] == kV2Signature[0];
    // How far this read may fill the buffer: never past the largest header possible so far.
    std::size_t cap = kMaxV1Bytes;
    if (v2) {
      cap = buffer_.size() < kV2HeaderBytes ? kV2HeaderBytes
                                            : kV2HeaderBytes + be16(buffer_, 14);
    }
    const std::size_t take = std::min(cap - buffer_.size(), bytes.size());
    buffer_.append(bytes.substr(0, take));
    bytes.remove_prefix(take);

    if (!v2) {
      if (!agrees(buffer_, kV1Prefix)) {
        return fail("not a PROXY protocol header");
      }
      const std::size_t lf = buffer_.find('\n');
      if (lf != std::string::npos) {
        if (lf == 0 || buffer_[lf - 1] != '\r') {
          return fail("v1 header line does not end in CRLF");
        }
        parseV1(lf - 1);
      } else if (buffer_.size() >= kMaxV1Bytes) {
        return fail("v1 header longer than 107 bytes");
      }
    } else {
      if (!agrees(buffer_, kV2Signature)) {
        return fail("not a PROXY protocol header");
      }
      if (buffer_.size() == kV2HeaderBytes) {
        const auto verCmd = static_cast<std::uint8_t>(buffer_[12]);
        if ((verCmd >> 4) != 2) {
          return fail("unsupported PROXY protocol version " + std::to_string(verCmd >> 4));
        }
        const std::size_t length = be16(buffer_, 14);
        if (length > kMaxV2Length) {
          return fail("v2 header of " + std::to_string(length) + " bytes, more than " +
                      std::to_string(kMaxV2Length) + " accepted");
        }
      }
      if (buffer_.size() >= kV2HeaderBytes &&
          buffer_.size() == kV2HeaderBytes + be16(buffer_, 14)) {
        parseV2();
      }
    }
  }
  if (status_ == Status::Done) {
    buffer_.append(bytes);  // the session's first bytes
  }
  return status_;
}

ProxyParser::Status ProxyParser::parseV1(std::size_t lineEnd) {
  headerLength_ = lineEnd + 2;
  std::string_view line = std::string_view(buffer_).substr(kV1Prefix.size(),
                                                           lineEnd - kV1Prefix.size());
  std::array<std::string_view, 6> fields{};
  std::size_t count = 0;
  while (count < fields.size()) {
    const std::size_t sp = line.find(' ');
    fields[count++] = line.substr(0, sp);
    if (sp == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(sp + 1);
  }
  source_.version = 1;
  if (fields[0] == "UNKNOWN") {
    // The sender could not tell: whatever follows up to the CRLF is to be ignored.
    source_.hasAddress = false;
    status_ = Status::Done;
    return status_;
  }
  if (fields[0] != "TCP4" && fields[0] != "TCP6") {
    return fail("v1 header with unknown protocol (TCP4, TCP6 or UNKNOWN expected)");
  }
  if (count != 5 || !line.empty()) {
    return fail("v1 header must have five fields after PROXY, separated by single spaces");
  }
  const bool v6 = fields[0] == "TCP6";
  std::optional<std::string> client = parseAddress(fields[1], v6);
  std::optional<std::string> server = parseAddress(fields[2], v6);
  if (!client || !server) {
    return fail(std::string("v1 header with an address that is not ") + (v6 ? "IPv6" : "IPv4"));
  }
  std::optional<std::uint16_t> clientPort = parsePort(fields[3]);
  std::optional<std::uint16_t> serverPort = parsePort(fields[4]);
  if (!clientPort || !serverPort) {
    return fail("v1 header with a port that is not 0..65535");
  }
  source_.hasAddress = true;
  source_.clientIp = *client;
  source_.serverIp = *server;
  source_.clientPort = *clientPort;
  source_.serverPort = *serverPort;
  status_ = Status::Done;
  return status_;
}

ProxyParser::Status ProxyParser::parseV2() {
  headerLength_ = buffer_.size();
  source_.version = 2;
  const auto command = static_cast<std::uint8_t>(buffer_[12] & 0x0f);
  const auto family = static_cast<std::uint8_t>(static_cast<std::uint8_t>(buffer_[13]) >> 4);
  const auto transport = static_cast<std::uint8_t>(buffer_[13] & 0x0f);
  const std::string_view payload = std::string_view(buffer_).substr(kV2HeaderBytes);
  if (command != kCommandLocal && command != kCommandProxy) {
    return fail("v2 header with unknown command " + std::to_string(command));
  }
  if (family > kFamilyUnix || transport > 2) {
    return fail("v2 header with unknown address family or transport");
  }
  if (command == kCommandLocal) {
    // The load balancer speaks for itself (health checks): its address block is ignored.
    source_.local = true;
    status_ = Status::Done;
    return status_;
  }
  if (family == kFamilyUnspec) {
    status_ = Status::Done;  // unknown origin: the real connection's address stands
    return status_;
  }
  if (transport != kTransportStream) {
    return fail("v2 header for a transport other than TCP");
  }
  const std::size_t block = family == kFamilyInet ? kV2Inet
                            : family == kFamilyInet6 ? kV2Inet6
                                                     : kV2Unix;
  if (payload.size() < block) {
    return fail("v2 header shorter than its address block");
  }
  // TLVs (type, 16-bit length, value) are skipped, but must fill the rest exactly.
  for (std::size_t at = block; at < payload.size();) {
    if (at + 3 > payload.size() || at + 3 + be16(payload, at + 1) > payload.size()) {
      return fail("v2 header with a malformed TLV");
    }
    at += 3 + be16(payload, at + 1);
  }
  if (family == kFamilyInet || family == kFamilyInet6) {
    const bool v6 = family == kFamilyInet6;
    const std::size_t n = v6 ? 16 : 4;
    source_.hasAddress = true;
    source_.clientIp = addressFromBytes(payload.substr(0, n), v6);
    source_.serverIp = addressFromBytes(payload.substr(n, n), v6);
    source_.clientPort = static_cast<std::uint16_t>(be16(payload, 2 * n));
    source_.serverPort = static_cast<std::uint16_t>(be16(payload, 2 * n + 2));
  }
  status_ = Status::Done;
  return status_;
}

}  // namespace smtpgate::smtp
