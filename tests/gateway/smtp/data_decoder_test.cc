#include "gateway/smtp/data_decoder.h"

#include <catch2/catch.hpp>

#include "gateway/smtp/data_encoder.h"
#include <string>
#include <vector>

namespace smtpgate::smtp {
namespace {

using namespace std::string_literals;

struct Decoded {
  bool done = false;
  std::size_t used = 0;
  std::string content;
  bool overflow = false;
  bool bare = false;
  std::size_t size = 0;

  bool operator==(const Decoded& o) const {
    return done == o.done && used == o.used && content == o.content && overflow == o.overflow &&
           bare == o.bare && size == o.size;
  }
};

using Output = DataDecoder::Output;

Decoded decodeChunks(const std::string& input, const std::vector<std::size_t>& cuts,
                     std::size_t max = 1 << 20, bool afterCrlf = true,
                     Output output = Output::Content) {
  DataDecoder d;
  d.start(max, afterCrlf, output);
  Decoded r;
  std::size_t pos = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t end : ends) {
    if (d.done()) {
      break;
    }
    std::size_t n = d.feed(std::string_view(input).substr(pos, end - pos));
    r.content += d.takeContent();  // as a streaming caller does
    r.used += n;
    pos += n;
    if (n < end - (pos - n)) {
      break;  // stopped at the terminator
    }
    pos = end;
  }
  r.done = d.done();
  r.overflow = d.overflow();
  r.bare = d.sawBareLineEnd();
  r.size = d.size();
  r.content += d.takeContent();
  if (r.overflow) {
    r.content.clear();  // what was taken before the limit was passed is refused as well
  }
  return r;
}

Decoded decode(const std::string& input, std::size_t max = 1 << 20, bool afterCrlf = true) {
  return decodeChunks(input, {}, max, afterCrlf);
}

TEST_CASE("data decoder: terminator and the bytes after it", "[smtp][data_decoder]") {
  Decoded r = decode("hello\r\n.\r\nQUIT\r\n");
  CHECK(r.done);
  CHECK(r.used == 10);
  CHECK(r.content == "hello\r\n");
  CHECK_FALSE(r.bare);
}

TEST_CASE("data decoder: an empty message ends on the DATA line's CRLF", "[smtp][data_decoder]") {
  Decoded r = decode(".\r\n");
  CHECK(r.done);
  CHECK(r.content.empty());
  // After a bare LF on the DATA line the same dot is content.
  Decoded bare = decode(".\r\n", 1000, false);
  CHECK_FALSE(bare.done);
  CHECK(bare.content == ".\r\n");
}

TEST_CASE("data decoder: dot-unstuffing", "[smtp][data_decoder]") {
  Decoded r = decode("..\r\n..x\r\n.x\r\nx.\r\n.\r\n");
  CHECK(r.done);
  CHECK(r.content == ".\r\n.x\r\nx\r\nx.\r\n");
}

TEST_CASE("data decoder: smuggling sequences are content", "[smtp][data_decoder]") {
  struct Case {
    const char* input;
    const char* content;
  };
  for (const Case& c :
       {Case{"a\n.\nb", "a\r\n.\r\nb"}, Case{"a\n.\r\nb", "a\r\n.\r\nb"},
        Case{"a\r\n.\nb", "a\r\n.\r\nb"}, Case{"a\r.\rb", "a\r\n.\r\nb"},
        Case{"a\r\n.\rb", "a\r\n.\r\nb"}, Case{"a\r.\r\nb", "a\r\n.\r\nb"},
        Case{"a\r\n.\r\rb", "a\r\n.\r\n\r\nb"}, Case{"a\r\n.\r\r\nb", "a\r\n.\r\n\r\nb"}}) {
    INFO(c.input);
    Decoded r = decode(c.input);
    CHECK_FALSE(r.done);
    CHECK(r.bare);
    CHECK(r.content == c.content);
  }
}

TEST_CASE("data decoder: bare line ends become CRLF, NUL stays", "[smtp][data_decoder]") {
  Decoded r = decode("a\nb\rc\0d\r\r\n\n.\r\n"s);
  CHECK(r.content == "a\r\nb\r\nc\0d\r\n\r\n\r\n.\r\n"s);
  CHECK(r.bare);
  // ".\r\n" above followed a bare LF: not the end.
  CHECK_FALSE(r.done);
}

TEST_CASE("data decoder: size limit", "[smtp][data_decoder]") {
  Decoded fits = decode("1234\r\n.\r\n", 6);
  CHECK(fits.done);
  CHECK_FALSE(fits.overflow);
  CHECK(fits.content == "1234\r\n");
  Decoded justOver = decode("12345\r\n.\r\n", 6);
  CHECK(justOver.done);
  CHECK(justOver.overflow);
  Decoded over = decode("12345\r\nmore\r\n.\r\nNEXT", 6);
  CHECK(over.done);
  CHECK(over.overflow);
  CHECK(over.content.empty());
  CHECK(over.size == 13);
  CHECK(over.used == 16);
}

TEST_CASE("data decoder: every split of a tricky input gives the same result",
          "[smtp][data_decoder]") {
  const std::string input =
      "..x\r\n.\n.\r\n\r.\r\r\n.\r\r\n\n\r\n..\r\n.a\rb\nc\0\r\n\r\n.\r\nAFTER\r\n.\r\n"s;
  const Decoded whole = decode(input);
  REQUIRE(whole.done);
  REQUIRE(whole.content ==
          ".x\r\n.\r\n.\r\n\r\n.\r\n\r\n.\r\n\r\n\r\n\r\n.\r\na\r\nb\r\nc\0\r\n\r\n"s);
  REQUIRE(input.substr(whole.used) == "AFTER\r\n.\r\n");
  for (std::size_t i = 0; i <= input.size(); ++i) {
    for (std::size_t j = i; j <= input.size(); ++j) {
      INFO("cuts at " << i << " and " << j);
      REQUIRE(decodeChunks(input, {i, j}) == whole);
    }
  }
  std::vector<std::size_t> everyByte;
  for (std::size_t i = 1; i < input.size(); ++i) {
    everyByte.push_back(i);
  }
  REQUIRE(decodeChunks(input, everyByte) == whole);
  // The size limit is split-independent as well.
  const Decoded limited = decode(input, 20);
  REQUIRE(limited.overflow);
  for (std::size_t i = 0; i <= input.size(); ++i) {
    REQUIRE(decodeChunks(input, {i}, 20) == limited);
  }
}

// Output::Stuffed is what relay mode sends: the content, dot-stuffed again. Well-formed lines
// are copied in runs, the rest goes through the state machine; both must agree with
// DataEncoder on the decoded content, for every split of the input.
std::string stuffed(const std::string& content) {
  DataEncoder e;
  return e.encode(content);
}

TEST_CASE("data decoder: stuffed output is the content dot-stuffed, for every split",
          "[smtp][data_decoder]") {
  const std::vector<std::string> inputs = {
      "..x\r\n.\n.\r\n\r.\r\r\n.\r\r\n\n\r\n..\r\n.a\rb\nc\0\r\n\r\n.\r\nAFTER\r\n"s,
      "Subject: s\r\n\r\nline\r\n..dot\r\n...two\r\n..\r\nlast\r\n.\r\nQUIT\r\n"s,
      "a\rb\rc\r\r\n\n\n.\n..\r.\r\n.\r\n"s,
      "no line end at all"s,
  };
  for (const std::string& input : inputs) {
    INFO(input);
    const Decoded content = decode(input);
    Decoded expected = content;
    expected.content = stuffed(content.content);
    for (std::size_t i = 0; i <= input.size(); ++i) {
      for (std::size_t j = i; j <= input.size(); ++j) {
        INFO("cuts at " << i << " and " << j);
        REQUIRE(decodeChunks(input, {i, j}, 1 << 20, true, Output::Stuffed) == expected);
      }
    }
  }
}

TEST_CASE("data decoder: a well-formed message is stuffed output byte for byte",
          "[smtp][data_decoder]") {
  const std::string body = "From: <a@b.c>\r\n\r\nline one\r\n..starts with a dot\r\n..\r\n";
  Decoded r = decodeChunks(body + ".\r\n", {}, 1 << 20, true, Output::Stuffed);
  CHECK(r.done);
  CHECK(r.content == body);
  CHECK(r.size == body.size() - 2);  // the stuffing dots are not content
  CHECK_FALSE(r.bare);
}

TEST_CASE("data decoder: the terminator split across reads, in both outputs",
          "[smtp][data_decoder]") {
  const std::string input = "x\r\n.\r\nNEXT";
  for (Output output : {Output::Content, Output::Stuffed}) {
    for (std::size_t i = 1; i < input.size(); ++i) {
      INFO("cut at " << i);
      Decoded r = decodeChunks(input, {i}, 1 << 20, true, output);
      CHECK(r.done);
      CHECK(r.used == 6);
      CHECK(r.content == "x\r\n");
    }
  }
}

TEST_CASE("data decoder: a line longer than the chunk", "[smtp][data_decoder]") {
  const std::string line = "." + std::string(300, 'x');
  const std::string input = "." + line + "\r\n.\r\n";  // stuffed on the wire
  std::vector<std::size_t> cuts;
  for (std::size_t at = 16; at < input.size(); at += 16) {
    cuts.push_back(at);
  }
  Decoded content = decodeChunks(input, cuts);
  CHECK(content.done);
  CHECK(content.content == line + "\r\n");
  Decoded wire = decodeChunks(input, cuts, 1 << 20, true, Output::Stuffed);
  CHECK(wire.done);
  CHECK(wire.content == "." + line + "\r\n");
  CHECK(wire.size == content.size);
}

TEST_CASE("data decoder: lone CR and LF in stuffed output", "[smtp][data_decoder]") {
  Decoded r = decodeChunks("a\rb\nc\r\n.\nd\r\n.\r\n", {}, 1 << 20, true, Output::Stuffed);
  CHECK(r.bare);
  CHECK(r.content == "a\r\nb\r\nc\r\n..\r\nd\r\n");  // "." LF is content, stuffed again
  CHECK(r.done);
  // LF "." CRLF is no terminator either.
  Decoded smuggled = decodeChunks("a\n.\r\nb\r\n", {}, 1 << 20, true, Output::Stuffed);
  CHECK_FALSE(smuggled.done);
  CHECK(smuggled.content == "a\r\n..\r\nb\r\n");
}

TEST_CASE("data decoder: many bare CRs in one chunk", "[smtp][data_decoder]") {
  // One line end search per chunk, not per line: the result is what matters here.
  std::string input;
  std::string expected;
  for (int i = 0; i < 20000; ++i) {
    input += "a\r";
    expected += "a\r\n";
  }
  input += "\r\n.\r\n";
  expected += "\r\n";
  for (Output output : {Output::Content, Output::Stuffed}) {
    Decoded r = decodeChunks(input, {}, 1 << 20, true, output);
    CHECK(r.done);
    CHECK(r.bare);
    CHECK(r.content == expected);
  }
}

TEST_CASE("data decoder: size limit on plain runs of stuffed output", "[smtp][data_decoder]") {
  // "..x" is 2 octets of content: 3 lines of 4 content octets fit 12 exactly.
  Decoded fits = decodeChunks("..x\r\n..x\r\n..x\r\n.\r\n", {}, 12, true, Output::Stuffed);
  CHECK(fits.done);
  CHECK_FALSE(fits.overflow);
  CHECK(fits.size == 12);
  CHECK(fits.content == "..x\r\n..x\r\n..x\r\n");
  Decoded over = decodeChunks("..x\r\n..x\r\n..xy\r\n.\r\n", {}, 12, true, Output::Stuffed);
  CHECK(over.done);
  CHECK(over.overflow);
  CHECK(over.content.empty());
  CHECK(over.size == 13);
}

}  // namespace
}  // namespace smtpgate::smtp
