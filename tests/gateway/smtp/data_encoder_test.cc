#include <catch2/catch.hpp>

#include "gateway/smtp/data_decoder.h"
#include "gateway/smtp/data_encoder.h"

using smtpgate::smtp::DataDecoder;
using smtpgate::smtp::DataEncoder;

namespace {

std::string encodeWhole(const std::string& content) {
  DataEncoder e;
  std::string out = e.encode(content);  // two statements: the order of + operands is unspecified
  return out + e.finish();
}

}  // namespace

TEST_CASE("encoder: dot-stuffing at line starts only") {
  CHECK(encodeWhole("") == ".\r\n");
  CHECK(encodeWhole("a\r\n") == "a\r\n.\r\n");
  CHECK(encodeWhole(".\r\n") == "..\r\n.\r\n");
  CHECK(encodeWhole(".a\r\nb.c\r\n..\r\n") == "..a\r\nb.c\r\n...\r\n.\r\n");
  CHECK(encodeWhole("no final line end") == "no final line end\r\n.\r\n");
  CHECK(encodeWhole("ends in CR\r") == "ends in CR\r\n.\r\n");
}

TEST_CASE("encoder: every split of a chunk gives the same bytes") {
  const std::string content = ".a\r\n.\r\nb\r\n..c\r\n\r\n.";
  const std::string whole = encodeWhole(content);
  for (std::size_t i = 0; i <= content.size(); ++i) {
    for (std::size_t j = i; j <= content.size(); ++j) {
      DataEncoder e;
      std::string out = e.encode(content.substr(0, i));
      out += e.encode(content.substr(i, j - i));
      out += e.encode(content.substr(j));
      out += e.finish();
      CHECK(out == whole);
    }
  }
}

TEST_CASE("encoder: decode(encode(x)) is x for the decoder's output") {
  // What the decoder makes of a hostile transcript, re-encoded and decoded again, is the same
  // message: the backend sees exactly what the gateway saw.
  using namespace std::string_literals;
  const std::string wire = "A\n.\nB\r\n.\nC\n.\r\nD\r.\rE\r\n.\r\r\n..F\r\n\0.\r\nG\r\n.\r\n"s;
  DataDecoder first;
  first.start(1 << 20, true);
  first.feed(std::string_view(wire.data(), wire.size()));
  REQUIRE(first.done());
  const std::string content = first.takeContent();
  const std::string reencoded = encodeWhole(content);
  DataDecoder second;
  second.start(1 << 20, true);
  CHECK(second.feed(reencoded) == reencoded.size());
  REQUIRE(second.done());
  CHECK(second.takeContent() == content);
}
