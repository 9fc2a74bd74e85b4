#include "gateway/smtp/reply_parser.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace smtpgate::smtp {
namespace {

// "code|enhanced|line/line|raw" for one reply: every field in one comparable string.
std::string summary(const Reply& r) {
  std::string out = std::to_string(r.code) + "|" + r.enhanced + "|";
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    out += (i == 0 ? "" : "/") + r.lines[i];
  }
  return out + "|" + r.raw;
}

std::vector<std::string> summaries(const std::vector<Reply>& replies) {
  std::vector<std::string> out;
  for (const Reply& r : replies) {
    out.push_back(summary(r));
  }
  return out;
}

std::vector<std::string> parseAll(std::string_view bytes) {
  ReplyParser parser;
  std::vector<std::string> out = summaries(parser.feed(bytes));
  REQUIRE_FALSE(parser.failed());
  REQUIRE_FALSE(parser.midReply());
  return out;
}

// The parser's error after feeding `bytes` whole ("" if it did not fail).
std::string errorOf(std::string_view bytes) {
  ReplyParser parser;
  parser.feed(bytes);
  return parser.error();
}

const std::string kTranscript =
    "220 mx.example ESMTP Postfix\r\n"
    "250-mx.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250 ENHANCEDSTATUSCODES\r\n"
    "250 2.1.0 Ok\r\n"
    "550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"
    "354\r\n";

const std::vector<std::string> kExpected = {
    "220||mx.example ESMTP Postfix|220 mx.example ESMTP Postfix\r\n",
    "250||mx.example/PIPELINING/SIZE 10240000/ENHANCEDSTATUSCODES|"
    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 ENHANCEDSTATUSCODES\r\n",
    "250|2.1.0|2.1.0 Ok|250 2.1.0 Ok\r\n",
    "550|5.1.1|5.1.1 <nobody@example.com>: Recipient address rejected|"
    "550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n",
    "354|||354\r\n",
};

TEST_CASE("reply parser: single and multi-line replies, enhanced codes", "[smtp][reply_parser]") {
  REQUIRE(parseAll(kTranscript) == kExpected);
}

TEST_CASE("reply parser: every split point and byte by byte give the same replies",
          "[smtp][reply_parser]") {
  for (std::size_t cut = 0; cut <= kTranscript.size(); ++cut) {
    ReplyParser parser;
    std::vector<std::string> got = summaries(parser.feed(kTranscript.substr(0, cut)));
    for (const std::string& s : summaries(parser.feed(kTranscript.substr(cut)))) {
      got.push_back(s);
    }
    INFO("cut at " << cut);
    REQUIRE(got == kExpected);
    REQUIRE_FALSE(parser.midReply());
  }
  ReplyParser parser;
  std::vector<std::string> got;
  for (char c : kTranscript) {
    for (const std::string& s : summaries(parser.feed(std::string(1, c)))) {
      got.push_back(s);
    }
  }
  REQUIRE(got == kExpected);
}

TEST_CASE("reply parser: midReply while a line or a multi-line reply is incomplete",
          "[smtp][reply_parser]") {
  ReplyParser parser;
  REQUIRE_FALSE(parser.midReply());
  REQUIRE(parser.feed("250-a\r").empty());
  REQUIRE(parser.midReply());
  REQUIRE(parser.feed("\n").empty());
  REQUIRE(parser.midReply());
  REQUIRE(parser.feed("250 b\r\n").size() == 1);
  REQUIRE_FALSE(parser.midReply());
}

TEST_CASE("reply parser: bare LF lines are accepted and re-rendered with CRLF",
          "[smtp][reply_parser]") {
  REQUIRE(parseAll("250-one\n250 two\n") ==
          std::vector<std::string>{"250||one/two|250-one\r\n250 two\r\n"});
  REQUIRE(parseAll("221 2.0.0 Bye\r\n451 4.3.0 x\n") ==
          std::vector<std::string>{"221|2.0.0|2.0.0 Bye|221 2.0.0 Bye\r\n",
                                   "451|4.3.0|4.3.0 x|451 4.3.0 x\r\n"});
}

TEST_CASE("reply parser: empty text and what is not an enhanced code", "[smtp][reply_parser]") {
  REQUIRE(parseAll("250 \r\n250-\r\n250\r\n") ==
          std::vector<std::string>{"250|||250 \r\n", "250||/|250-\r\n250\r\n"});
  // The class must be the code's first digit; digits limited to three; a space must follow.
  REQUIRE(parseAll("250 5.0.0 x\r\n") == std::vector<std::string>{"250||5.0.0 x|250 5.0.0 x\r\n"});
  REQUIRE(parseAll("250 2.1234.0 x\r\n")[0] == "250||2.1234.0 x|250 2.1234.0 x\r\n");
  REQUIRE(parseAll("250 2.0.0x\r\n")[0] == "250||2.0.0x|250 2.0.0x\r\n");
  REQUIRE(parseAll("452 4.5.3\r\n")[0] == "452|4.5.3|4.5.3|452 4.5.3\r\n");
  REQUIRE(parseAll("250-2.0.0 first\r\n250 2.0.1 second\r\n")[0] ==
          "250|2.0.0|2.0.0 first/2.0.1 second|250-2.0.0 first\r\n250 2.0.1 second\r\n");
}

TEST_CASE("reply parser: malformed lines fail the parser", "[smtp][reply_parser]") {
  CHECK(errorOf("25 ok\r\n").find("three-digit") != std::string::npos);
  CHECK(errorOf("\r\n").find("three-digit") != std::string::npos);
  CHECK(errorOf("abc ok\r\n").find("three-digit") != std::string::npos);
  CHECK(errorOf("25a ok\r\n").find("three-digit") != std::string::npos);
  CHECK(errorOf("250_ok\r\n").find("separator") != std::string::npos);
  CHECK(errorOf("2500 ok\r\n").find("separator") != std::string::npos);
  CHECK(errorOf("199 x\r\n").find("out of range") != std::string::npos);
  CHECK(errorOf("600 x\r\n").find("out of range") != std::string::npos);
  CHECK(errorOf("000\r\n").find("out of range") != std::string::npos);
  CHECK(errorOf("250 a\rb\r\n").find("bare CR") != std::string::npos);
  CHECK(errorOf(std::string("250 a\0b\r\n", 9)).find("NUL") != std::string::npos);
  CHECK(errorOf("200 ok\r\n599 no\r\n").empty());
}

TEST_CASE("reply parser: a code that changes within a reply fails", "[smtp][reply_parser]") {
  ReplyParser parser;
  REQUIRE(parser.feed("250-a\r\n251 b\r\n").empty());
  REQUIRE(parser.failed());
  REQUIRE(parser.error() == "reply code changed from 250 to 251 within one reply");
  REQUIRE_FALSE(parser.midReply());
}

TEST_CASE("reply parser: replies before a failure come back; after it input is ignored",
          "[smtp][reply_parser]") {
  ReplyParser parser;
  std::vector<Reply> got = parser.feed("250 ok\r\nbogus\r\n250 later\r\n");
  REQUIRE(summaries(got) == std::vector<std::string>{"250||ok|250 ok\r\n"});
  REQUIRE(parser.failed());
  REQUIRE(parser.feed("250 more\r\n").empty());
  parser.reset();
  REQUIRE_FALSE(parser.failed());
  REQUIRE(summaries(parser.feed("220 again\r\n")) ==
          std::vector<std::string>{"220||again|220 again\r\n"});
}

TEST_CASE("reply parser: line length limit, with and without its terminator",
          "[smtp][reply_parser]") {
  const std::size_t limit = ReplyParser::kLineLimit;
  const std::string longest = "250 " + std::string(limit - 6, 'x');  // + CRLF = limit
  REQUIRE(parseAll(longest + "\r\n").size() == 1);
  REQUIRE(parseAll(longest + "\n").size() == 1);
  CHECK(errorOf(longest + "y\r\n") == "reply line longer than 2048 octets");
  CHECK(errorOf(longest + "y\n") == "reply line longer than 2048 octets");

  // Streaming: an unterminated line fails as soon as it can no longer fit, not at its end.
  ReplyParser parser;
  parser.feed(longest);
  parser.feed("\r");
  REQUIRE_FALSE(parser.failed());
  REQUIRE(parser.feed("\n").size() == 1);
  parser.feed(longest);
  REQUIRE_FALSE(parser.failed());
  parser.feed("y");
  REQUIRE(parser.failed());
  REQUIRE(parser.error() == "reply line longer than 2048 octets");
}

TEST_CASE("reply parser: at most 100 lines per reply", "[smtp][reply_parser]") {
  std::string hundred;
  for (std::size_t i = 1; i < ReplyParser::kMaxLines; ++i) {
    hundred += "250-line\r\n";
  }
  REQUIRE(parseAll(hundred + "250 last\r\n")[0].size() > 0);
  CHECK(errorOf(hundred + "250-one more\r\n250 last\r\n") == "reply longer than 100 lines");
}

TEST_CASE("reply parser: firstLine and the code classes", "[smtp][reply_parser]") {
  ReplyParser parser;
  std::vector<Reply> got = parser.feed("554-5.7.1 go away\r\n554 really\r\n421\r\n250 ok\r\n");
  REQUIRE(got.size() == 3);
  CHECK(got[0].firstLine() == "554 5.7.1 go away");
  CHECK(got[0].permanent());
  CHECK(got[1].firstLine() == "421");
  CHECK(got[1].transient());
  CHECK(got[2].positive());
}

}  // namespace
}  // namespace smtpgate::smtp
