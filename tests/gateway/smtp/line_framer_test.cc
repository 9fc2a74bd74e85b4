#include "gateway/smtp/line_framer.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace smtpgate::smtp {
namespace {

std::vector<std::string> frames(LineFramer& framer,
                                LineFramer::Mode mode = LineFramer::Mode::Command) {
  std::vector<std::string> out;
  while (true) {
    LineFramer::Frame f = framer.next(mode);
    if (f.status == LineFramer::Status::NeedMore) {
      return out;
    }
    if (f.status == LineFramer::Status::TooLong) {
      out.emplace_back("<too long>");
    } else {
      out.push_back(f.text + (f.crlf ? "|crlf" : "|lf"));
    }
  }
}

TEST_CASE("line framer: CRLF, bare LF and partial lines", "[smtp][line_framer]") {
  LineFramer framer;
  framer.append("NOOP\r\nRSET\nQUI");
  REQUIRE(frames(framer) == std::vector<std::string>{"NOOP|crlf", "RSET|lf"});
  REQUIRE(framer.buffered() == 3);
  framer.append("T\r");
  REQUIRE(frames(framer).empty());
  framer.append("\n");
  REQUIRE(frames(framer) == std::vector<std::string>{"QUIT|crlf"});
  REQUIRE(framer.buffered() == 0);
}

TEST_CASE("line framer: a CR inside a line stays in the text", "[smtp][line_framer]") {
  LineFramer framer;
  framer.append("A\rB\r\r\n");
  REQUIRE(frames(framer) == std::vector<std::string>{"A\rB\r|crlf"});
}

TEST_CASE("line framer: 512 octets including CRLF", "[smtp][line_framer]") {
  LineFramer framer;
  framer.append(std::string(510, 'a') + "\r\n" + std::string(511, 'b') + "\r\n" +
                std::string(511, 'c') + "\n");
  std::vector<std::string> got = frames(framer);
  REQUIRE(got.size() == 3);
  REQUIRE(got[0] == std::string(510, 'a') + "|crlf");
  REQUIRE(got[1] == "<too long>");
  REQUIRE(got[2] == std::string(511, 'c') + "|lf");
}

TEST_CASE("line framer: an over-long line is reported once and dropped as it streams",
          "[smtp][line_framer]") {
  LineFramer framer;
  std::vector<std::string> got;
  for (int i = 0; i < 300; ++i) {
    framer.append(std::string(100, 'x'));
    for (auto& f : frames(framer)) {
      got.push_back(f);
    }
    REQUIRE(framer.buffered() < LineFramer::kCommandLimit);
  }
  framer.append("yyy\r\nNOOP\r\n");
  for (auto& f : frames(framer)) {
    got.push_back(f);
  }
  REQUIRE(got == std::vector<std::string>{"<too long>", "NOOP|crlf"});
}

TEST_CASE("line framer: AUTH lines and SASL responses may be longer", "[smtp][line_framer]") {
  LineFramer framer;
  const std::string auth = "auth PLAIN " + std::string(12000, 'Q');
  framer.append(auth + "\r\n");
  REQUIRE(frames(framer) == std::vector<std::string>{auth + "|crlf"});
  framer.append(std::string(12286, 'R') + "\r\n");
  REQUIRE(frames(framer, LineFramer::Mode::AuthResponse).size() == 1);
  framer.append(std::string(12287, 'R') + "\r\n");
  REQUIRE(frames(framer, LineFramer::Mode::AuthResponse) == std::vector<std::string>{"<too long>"});
  framer.append("MAIL " + std::string(1000, 'M') + "\r\n");
  REQUIRE(frames(framer) == std::vector<std::string>{"<too long>"});
}

TEST_CASE("line framer: clear forgets everything", "[smtp][line_framer]") {
  LineFramer framer;
  framer.append(std::string(600, 'x'));
  REQUIRE(frames(framer) == std::vector<std::string>{"<too long>"});
  framer.clear();
  framer.append("NOOP\r\n");
  REQUIRE(frames(framer) == std::vector<std::string>{"NOOP|crlf"});
  framer.append("RSET\r\nNOOP");
  framer.clear();
  REQUIRE(framer.buffered() == 0);
  REQUIRE(frames(framer).empty());
}

}  // namespace
}  // namespace smtpgate::smtp
