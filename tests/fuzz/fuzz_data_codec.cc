// libFuzzer target: the DATA decoder and the re-encoder toward the backend
// (gateway/smtp/data_decoder.h, data_encoder.h).
//
// Input: byte 0 = flags (bit 0: DATA line ended with CRLF; bit 1: treat the rest as message
// lines to join with CRLF rather than as raw client bytes; bit 2: small size limit), byte 1 =
// split seed, then the bytes.
//
// Checked: the decoder gives the same result for the input whole, byte by byte and in seeded
// chunks; its content has CRLF line ends only; the encoder (in chunks) never emits a lone CR or
// LF nor a "." line before its end, and decoding its output gives back exactly the content,
// terminated where the encoder put the end, with no bare line end.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/smtp/data_decoder.h"
#include "gateway/smtp/data_encoder.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace smtpgate::smtp;
constexpr const char* kTarget = "fuzz_data_codec";

struct Decoded {
  std::size_t used = 0;
  bool done = false;
  bool overflow = false;
  bool bare = false;
  std::size_t size = 0;
  std::string content;
  bool operator==(const Decoded&) const = default;
};

// how: 0 whole, 1 byte by byte, 2 seeded chunks.
Decoded decode(std::string_view in, std::size_t max, bool afterCrlf, int how, std::uint32_t seed) {
  DataDecoder d;
  d.start(max, afterCrlf);
  Decoded r;
  std::string_view rest = in;
  std::uint32_t rng = seed * 2654435761u + 1;
  while (!rest.empty() && !d.done()) {
    std::size_t n = rest.size();
    if (how == 1) {
      n = 1;
    } else if (how == 2) {
      rng = rng * 1103515245u + 12345u;
      n = std::min<std::size_t>(rest.size(), (rng >> 16) % 17);  // 0 too: an empty feed
    }
    const std::size_t used = d.feed(rest.substr(0, n));
    FUZZ_CHECK(used <= n);
    if (!d.done()) {
      FUZZ_CHECK(used == n);  // nothing is left over before the terminator
    }
    r.used += used;
    rest.remove_prefix(used);
  }
  r.done = d.done();
  r.overflow = d.overflow();
  r.bare = d.sawBareLineEnd();
  r.size = d.size();
  r.content = d.takeContent();
  return r;
}

bool crlfOnly(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

// The encoder's output for `content`, fed in seeded chunks.
std::string encode(std::string_view content, std::uint32_t seed) {
  DataEncoder e;
  std::string wire;
  std::uint32_t rng = seed + 7;
  while (!content.empty()) {
    rng = rng * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(content.size(), (rng >> 16) % 9);
    wire += e.encode(content.substr(0, n));
    content.remove_prefix(n);
  }
  wire += e.finish();
  return wire;
}

// The wire form: CRLF only, ends with the terminator, and no "." line before it.
void checkWire(std::string_view wire) {
  FUZZ_CHECK(crlfOnly(wire), wire);
  FUZZ_CHECK(wire.ends_with(".\r\n"), wire);
  FUZZ_CHECK(wire.size() == 3 || wire.ends_with("\r\n.\r\n"), wire);
  const std::string_view body = wire.substr(0, wire.size() - 3);
  FUZZ_CHECK(body.rfind(".\r\n", 0) != 0, wire);
  FUZZ_CHECK(body.find("\r\n.\r\n") == std::string_view::npos, wire);
  // Every line that starts with a dot was stuffed.
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t end = body.find("\r\n", pos);
    FUZZ_CHECK(end != std::string_view::npos, wire);
    if (body[pos] == '.') {
      FUZZ_CHECK(end - pos >= 2 && body[pos + 1] == '.', wire);
    }
    pos = end + 2;
  }
}

// Content (CRLF line ends) → wire → decoded again: the same content (with a last CRLF added
// when it had none), all of the wire used.
void roundTrip(std::string_view content, std::uint32_t seed) {
  const std::string wire = encode(content, seed);
  std::string expected(content);
  if (!expected.empty() && !expected.ends_with("\r\n")) {
    expected += "\r\n";
  }
  checkWire(wire);
  for (int how : {0, 2}) {
    const Decoded back = decode(wire, expected.size() + 16, true, how, seed);
    FUZZ_CHECK(back.done, wire);
    FUZZ_CHECK(back.used == wire.size(), wire);
    FUZZ_CHECK(!back.bare, wire);
    FUZZ_CHECK(!back.overflow, wire);
    FUZZ_CHECK(back.content == expected, wire);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > 256 * 1024) {
    return -1;
  }
  const std::uint8_t flags = data[0];
  const std::uint32_t seed = data[1];
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const bool afterCrlf = flags & 1;
  const std::size_t max = (flags & 4) ? 32 + seed : 1 << 20;

  if (flags & 2) {
    // Message lines: the rest split at LF, each line stripped of CR and LF, joined with CRLF.
    std::string content;
    std::size_t pos = 0;
    while (pos < in.size()) {
      std::size_t lf = in.find('\n', pos);
      if (lf == std::string_view::npos) lf = in.size();
      for (char c : in.substr(pos, lf - pos)) {
        if (c != '\r') content += c;
      }
      content += "\r\n";
      pos = lf + 1;
    }
    roundTrip(content, seed);
    return 0;
  }

  const Decoded whole = decode(in, max, afterCrlf, 0, seed);
  for (int how : {1, 2}) {
    const Decoded other = decode(in, max, afterCrlf, how, seed);
    FUZZ_CHECK(other == whole, in);
  }
  FUZZ_CHECK(whole.size >= whole.content.size());
  if (whole.overflow) {
    FUZZ_CHECK(whole.content.empty() && whole.size > max);
  } else {
    FUZZ_CHECK(whole.size == whole.content.size() && whole.size <= max);
    FUZZ_CHECK(crlfOnly(whole.content), whole.content);
    FUZZ_CHECK(whole.content.empty() || whole.content.ends_with("\r\n") || !whole.done,
               whole.content);
    roundTrip(whole.content, seed);  // a message cut short too: finish() completes its line
  }
  return 0;
}
