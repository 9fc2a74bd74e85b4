#include "gateway/smtp/data_decoder.h"

#include <catch2/catch.hpp>
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

Decoded decodeChunks(const std::string& input, const std::vector<std::size_t>& cuts,
                     std::size_t max = 1 << 20, bool afterCrlf = true) {
  DataDecoder d;
  d.start(max, afterCrlf);
  Decoded r;
  std::size_t pos = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t end : ends) {
    if (d.done()) {
      break;
    }
    std::size_t n = d.feed(std::string_view(input).substr(pos, end - pos));
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
  r.content = d.takeContent();
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

}  // namespace
}  // namespace smtpgate::smtp
