// libFuzzer target: the PROXY protocol reader in front of client connections
// (gateway/smtp/proxy_parser.h), the bytes a load balancer — or anyone pretending to be one
// within proxy_protocol.trusted — sends first.
//
// The input is fed whole, one byte at a time, and split at a point taken from its first byte.
// Checked: the verdict, the error and the source are the same however the bytes arrive; a header
// that was accepted is at most 107 octets (v1) or 16 + kMaxV2Length (v2), its bytes alone give
// the same verdict, and the remainder is exactly the input after it; addresses are canonical
// (they parse, and print back the same), and written again with proxyV1()/proxyV2() they read
// back equal.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/smtp/proxy_header.h"
#include "gateway/smtp/proxy_parser.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace smtpgate::smtp;
constexpr const char* kTarget = "fuzz_proxy_parser";

struct Run {
  ProxyParser parser;
  std::size_t fed = 0;
};

void feedInChunks(Run& run, std::string_view in, std::size_t chunk) {
  while (run.fed < in.size() && run.parser.status() == ProxyParser::Status::NeedMore) {
    std::string_view piece = in.substr(run.fed, chunk);
    run.parser.feed(piece);
    run.fed += piece.size();
  }
}

bool sameSource(const ProxySource& a, const ProxySource& b) {
  return a.version == b.version && a.hasAddress == b.hasAddress && a.local == b.local &&
         a.clientIp == b.clientIp && a.clientPort == b.clientPort && a.serverIp == b.serverIp &&
         a.serverPort == b.serverPort;
}

void checkCanonical(const std::string& ip, std::string_view in) {
  std::optional<IpAddress> parsed = IpAddress::parse(ip);
  FUZZ_CHECK(parsed && parsed->str() == ip, in);
}

void checkRoundTrip(const ProxySource& s, std::string_view in) {
  ProxyInfo info;
  info.clientIp = s.clientIp;
  info.clientPort = s.clientPort;
  info.serverIp = s.serverIp;
  info.serverPort = s.serverPort;
  for (const ProxyHeader& h : {proxyV1(info), proxyV2(info)}) {
    ProxyParser again;
    FUZZ_CHECK(again.feed(h.bytes) == ProxyParser::Status::Done, h.bytes);
    FUZZ_CHECK(again.remainder().empty(), h.bytes);
    const ProxySource& r = again.source();
    // Mixed families are written IPv4-mapped; the reader folds them back.
    FUZZ_CHECK(r.hasAddress && r.clientIp == s.clientIp && r.clientPort == s.clientPort, in);
    FUZZ_CHECK(r.serverIp == s.serverIp && r.serverPort == s.serverPort, in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 8192) {
    return -1;
  }
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Run whole, bytewise, split;
  feedInChunks(whole, in, in.size() == 0 ? 1 : in.size());
  feedInChunks(bytewise, in, 1);
  const std::size_t cut = size == 0 ? 1 : 1 + static_cast<std::uint8_t>(in[0]) % size;
  feedInChunks(split, in, cut);

  const ProxyParser& p = whole.parser;
  for (const Run* other : {&bytewise, &split}) {
    FUZZ_CHECK(other->parser.status() == p.status(), in);
    FUZZ_CHECK(other->parser.error() == p.error(), in);
    if (p.status() == ProxyParser::Status::Done) {
      FUZZ_CHECK(sameSource(other->parser.source(), p.source()), in);
      // Consumed by the header: what was fed less what was handed back.
      const std::size_t header = other->fed - other->parser.remainder().size();
      FUZZ_CHECK(in.substr(header, other->parser.remainder().size()) ==
                     other->parser.remainder(),
                 in);
    }
  }
  if (p.status() == ProxyParser::Status::Error) {
    FUZZ_CHECK(!p.error().empty(), in);
    return 0;
  }
  if (p.status() == ProxyParser::Status::NeedMore) {
    // Only a prefix of a header can leave the reader waiting, and never a long one.
    FUZZ_CHECK(size < 16 + ProxyParser::kMaxV2Length, in);
    return 0;
  }
  const std::size_t header = whole.fed - p.remainder().size();
  const ProxySource& s = p.source();
  FUZZ_CHECK(s.version == 1 || s.version == 2, in);
  FUZZ_CHECK(header <= (s.version == 1 ? ProxyParser::kMaxV1Bytes
                                       : 16 + ProxyParser::kMaxV2Length),
             in);
  FUZZ_CHECK(in.substr(header) == p.remainder(), in);
  ProxyParser alone;
  FUZZ_CHECK(alone.feed(in.substr(0, header)) == ProxyParser::Status::Done, in);
  FUZZ_CHECK(sameSource(alone.source(), s) && alone.remainder().empty(), in);
  FUZZ_CHECK(!(s.local && s.hasAddress), in);
  if (s.hasAddress) {
    checkCanonical(s.clientIp, in);
    checkCanonical(s.serverIp, in);
    checkRoundTrip(s, in);
  } else {
    FUZZ_CHECK(s.clientIp.empty() && s.serverIp.empty(), in);
  }
  return 0;
}
