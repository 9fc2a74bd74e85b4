#include "gateway/smtp/address.h"

#include <catch2/catch.hpp>

namespace smtpgate::smtp {
namespace {

TEST_CASE("address: valid mailboxes", "[smtp][address]") {
  for (const char* a : {"a@b.c", "first.last+tag@sub.example.com", "x@localhost",
                        "\"john doe\"@example.com", "\"a\\\"b\"@example.com", "\"a>b\"@x.y",
                        "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]", "o'brien@example.ie",
                        "\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
                        "cole.fr",
                        "a-b@x-y.z"}) {
    INFO(a);
    CHECK(isValidMailbox(a));
  }
}

TEST_CASE("address: invalid mailboxes", "[smtp][address]") {
  for (const char* a : {"",
                        "ab",
                        "@b.c",
                        "a@",
                        "a b@c.d",
                        "a@b c",
                        ".a@b.c",
                        "a.@b.c",
                        "a..b@c.d",
                        "a@b..c",
                        "a@.b",
                        "a@b.",
                        "a@-b.c",
                        "a@b-.c",
                        "a@b_c.d",
                        "a\tb@c.d",
                        "\"a\nb\"@c.d",
                        "\"ab@c.d",
                        "a@[1.2.3]",
                        "a@[1.2.3.256]",
                        "a@[IPv6:zz::1]",
                        "a@b@c.d",
                        "\xc3@x.y",
                        "a@\xff.y",
                        "a(b)@c.d",
                        "a,b@c.d"}) {
    INFO(a);
    CHECK_FALSE(isValidMailbox(a));
  }
}

TEST_CASE("address: paths", "[smtp][address]") {
  ParsedPath p = parsePath("<a@b.c> SIZE=10  BODY=8BITMIME");
  CHECK(p.status == PathStatus::Ok);
  CHECK(p.address == "a@b.c");
  CHECK(p.params == "SIZE=10  BODY=8BITMIME");
  CHECK(splitParams(p.params) == std::vector<std::string_view>{"SIZE=10", "BODY=8BITMIME"});

  CHECK(parsePath(" <>").status == PathStatus::Ok);
  CHECK(parsePath("<>").address.empty());
  CHECK(parsePath("<\"x>y\"@b.c>").address == "\"x>y\"@b.c");
  CHECK(parsePath("<@r.example:a@b.c>").address == "a@b.c");
  CHECK(parsePath("<@r.example,@s.example:a@b.c>").address == "a@b.c");
  CHECK(parsePath("<@r.example a@b.c>").status == PathStatus::BadAddress);
  CHECK(parsePath("<@:a@b.c>").status == PathStatus::BadAddress);
  CHECK(parsePath("a@b.c").status == PathStatus::Syntax);
  CHECK(parsePath("<a@b.c").status == PathStatus::Syntax);
  CHECK(parsePath("<a@b.c>x").status == PathStatus::Syntax);
  CHECK(parsePath("").status == PathStatus::Syntax);
}

}  // namespace
}  // namespace smtpgate::smtp
