// libFuzzer target: the backend reply parser (gateway/smtp/reply_parser.h).
//
// Input: byte 0 = split seed, then backend bytes. Checked: the replies (and the failure) do not
// depend on how the bytes are split; every reply is well-formed (one code 200-599 on every line,
// at most kMaxLines lines, each within kLineLimit, raw = the lines re-joined with CRLF, no CR or
// NUL inside a line, enhanced code consistent with the reply code); parsing a reply's raw form
// again gives the same reply; after a failure nothing more comes out; reset() recovers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/reply_parser.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace smtpgate::smtp;
constexpr const char* kTarget = "fuzz_reply_parser";

struct Result {
  std::vector<Reply> replies;
  bool failed = false;
  std::string error;
  bool midReply = false;
};

bool same(const Reply& a, const Reply& b) {
  return a.code == b.code && a.enhanced == b.enhanced && a.lines == b.lines && a.raw == b.raw;
}

bool same(const Result& a, const Result& b) {
  if (a.replies.size() != b.replies.size() || a.failed != b.failed || a.error != b.error ||
      a.midReply != b.midReply) {
    return false;
  }
  for (std::size_t i = 0; i < a.replies.size(); ++i) {
    if (!same(a.replies[i], b.replies[i])) return false;
  }
  return true;
}

// how: 0 whole, 1 byte by byte, 2 seeded chunks.
Result parse(ReplyParser& p, std::string_view in, int how, std::uint32_t seed) {
  Result r;
  std::uint32_t rng = seed * 2654435761u + 3;
  while (!in.empty()) {
    std::size_t n = in.size();
    if (how == 1) {
      n = 1;
    } else if (how == 2) {
      rng = rng * 1103515245u + 12345u;
      n = std::min<std::size_t>(in.size(), (rng >> 16) % 300);
    }
    const bool wasFailed = p.failed();
    std::vector<Reply> got = p.feed(in.substr(0, n));
    if (wasFailed) {
      FUZZ_CHECK(got.empty());  // input is ignored after a failure
    }
    for (Reply& reply : got) r.replies.push_back(std::move(reply));
    in.remove_prefix(n);
  }
  r.failed = p.failed();
  r.error = p.error();
  r.midReply = p.midReply();
  return r;
}

void checkReply(const Reply& reply) {
  FUZZ_CHECK(reply.code >= 200 && reply.code <= 599, reply.raw);
  FUZZ_CHECK(!reply.lines.empty() && reply.lines.size() <= ReplyParser::kMaxLines, reply.raw);
  FUZZ_CHECK(reply.positive() + reply.transient() + reply.permanent() + (reply.code / 100 == 3) ==
                 1,
             reply.raw);
  const std::string code = std::to_string(reply.code);
  std::string raw;
  for (std::size_t i = 0; i < reply.lines.size(); ++i) {
    const std::string& text = reply.lines[i];
    FUZZ_CHECK(text.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos, reply.raw);
    FUZZ_CHECK(text.size() + 6 <= ReplyParser::kLineLimit, reply.raw);
    const bool last = i + 1 == reply.lines.size();
    std::string line = code + (last ? " " : "-") + text;
    // The parser keeps "250" (no separator, no text) as it came.
    if (last && text.empty() && reply.raw.size() >= 5 &&
        reply.raw.compare(reply.raw.size() - 5, 5, code + "\r\n") == 0 &&
        (reply.raw.size() == 5 || reply.raw[reply.raw.size() - 6] == '\n')) {
      line = code;
    }
    raw += line + "\r\n";
  }
  FUZZ_CHECK(raw == reply.raw, reply.raw);
  if (!reply.enhanced.empty()) {
    FUZZ_CHECK(reply.enhanced[0] == code[0] && reply.enhanced[1] == '.', reply.raw);
    FUZZ_CHECK(reply.lines[0].rfind(reply.enhanced, 0) == 0, reply.raw);
  }
  FUZZ_CHECK(reply.firstLine().rfind(code, 0) == 0, reply.raw);

  // The raw form parses back to the same reply and nothing else.
  ReplyParser again;
  std::vector<Reply> back = again.feed(reply.raw);
  FUZZ_CHECK(!again.failed() && back.size() == 1 && same(back[0], reply) && !again.midReply(),
             reply.raw);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 512 * 1024) {
    return -1;
  }
  const std::uint32_t seed = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  ReplyParser whole;
  const Result reference = parse(whole, in, 0, seed);
  for (const Reply& reply : reference.replies) {
    checkReply(reply);
  }
  if (reference.failed) {
    FUZZ_CHECK(!reference.error.empty() && !reference.midReply);
  }
  for (int how : {1, 2}) {
    if (how == 1 && in.size() > 16 * 1024) continue;
    ReplyParser p;
    const Result other = parse(p, in, how, seed);
    FUZZ_CHECK(same(other, reference), in);
  }
  // reset() forgets everything, failure included: a good reply parses afterwards.
  whole.reset();
  FUZZ_CHECK(!whole.failed() && !whole.midReply());
  std::vector<Reply> after = whole.feed("250 2.0.0 Ok\r\n");
  FUZZ_CHECK(after.size() == 1 && after[0].code == 250 && after[0].enhanced == "2.0.0");
  return 0;
}
