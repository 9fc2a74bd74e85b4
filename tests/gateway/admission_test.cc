#include <catch2/catch.hpp>

#include "gateway/admission.h"

using smtpgate::Admission;

TEST_CASE("admission counts connections in all and per IP") {
  Admission a;
  CHECK(a.admit("192.0.2.1", 3, 2) == Admission::Verdict::Admitted);
  CHECK(a.admit("192.0.2.1", 3, 2) == Admission::Verdict::Admitted);
  CHECK(a.admit("192.0.2.1", 3, 2) == Admission::Verdict::TooManyFromIp);
  CHECK(a.admit("192.0.2.2", 3, 2) == Admission::Verdict::Admitted);
  CHECK(a.admit("192.0.2.3", 3, 2) == Admission::Verdict::TooManyTotal);
  CHECK(a.total() == 3);
  a.release("192.0.2.1");
  CHECK(a.fromIp("192.0.2.1") == 1);
  CHECK(a.admit("192.0.2.3", 3, 2) == Admission::Verdict::Admitted);
  a.release("192.0.2.1");
  a.release("192.0.2.2");
  a.release("192.0.2.3");
  CHECK(a.total() == 0);
  CHECK(a.fromIp("192.0.2.1") == 0);
  a.release("192.0.2.9");  // unknown: no underflow
  CHECK(a.total() == 0);
}

TEST_CASE("admission: new connections per IP per minute, a token bucket") {
  Admission a;
  const uint64_t t0 = 1'000'000;
  for (int i = 0; i < 5; ++i) {
    CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + i) == Admission::Verdict::Admitted);
    a.release("192.0.2.1");  // the rate counts new connections, not open ones
  }
  CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + 10) == Admission::Verdict::TooManyNewFromIp);
  CHECK(a.total() == 0);  // a refusal holds nothing
  // Another address has its own bucket.
  CHECK(a.admit("192.0.2.2", 100, 100, 5, t0 + 10) == Admission::Verdict::Admitted);
  // Tokens come back at 5 per minute: one after 12 s, not before.
  CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + 11'000) == Admission::Verdict::TooManyNewFromIp);
  CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + 12'100) == Admission::Verdict::Admitted);
  CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + 12'200) == Admission::Verdict::TooManyNewFromIp);
  a.release("192.0.2.1");
  // Refused attempts keep taking nothing but keep the entry alive; a minute of quiet is a
  // full bucket again.
  for (int i = 0; i < 5; ++i) {
    CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + 90'000 + i) == Admission::Verdict::Admitted);
  }
  // A clock that runs backwards a little (another worker's loop) does not underflow.
  CHECK(a.admit("192.0.2.1", 100, 100, 5, t0 + 89'000) == Admission::Verdict::TooManyNewFromIp);
}

TEST_CASE("admission: the concurrent limits still apply under the rate") {
  Admission a;
  CHECK(a.admit("192.0.2.1", 2, 1, 100, 0) == Admission::Verdict::Admitted);
  CHECK(a.admit("192.0.2.1", 2, 1, 100, 0) == Admission::Verdict::TooManyFromIp);
  CHECK(a.admit("192.0.2.2", 2, 1, 100, 0) == Admission::Verdict::Admitted);
  CHECK(a.admit("192.0.2.3", 2, 1, 100, 0) == Admission::Verdict::TooManyTotal);
}

TEST_CASE("admission: TLS handshakes per IP per minute") {
  Admission a;
  CHECK(a.admitHandshake("192.0.2.1", 2, 0));
  CHECK(a.admitHandshake("192.0.2.1", 2, 1));
  CHECK_FALSE(a.admitHandshake("192.0.2.1", 2, 2));
  CHECK(a.admitHandshake("192.0.2.9", 2, 2));
  // Its own table: connections from the address are not affected.
  CHECK(a.admit("192.0.2.1", 10, 10, 1, 2) == Admission::Verdict::Admitted);
  CHECK(a.admitHandshake("192.0.2.1", 2, 30'010));  // one token back after 30 s
}

TEST_CASE("admission: IPv6 rates are per /64") {
  CHECK(Admission::rateKey("192.0.2.1") == "192.0.2.1");
  CHECK(Admission::rateKey("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64");
  CHECK(Admission::rateKey("2001:db8:1:2::99") == "2001:db8:1:2::/64");
  CHECK(Admission::rateKey("not-an-address:") == "not-an-address:");
  Admission a;
  CHECK(a.admitHandshake("2001:db8:1:2::1", 1, 0));
  CHECK_FALSE(a.admitHandshake("2001:db8:1:2::2", 1, 0));
  CHECK(a.admitHandshake("2001:db8:1:3::1", 1, 0));
}

TEST_CASE("admission: tracked addresses expire after a minute and are capped") {
  smtpgate::RateTable table(3);
  CHECK(table.take("a", 1, 0));
  CHECK(table.take("b", 1, 10));
  CHECK(table.take("c", 1, 20));
  CHECK(table.size() == 3);
  CHECK_FALSE(table.take("a", 1, 30));  // "a" is now the most recently used
  CHECK(table.take("d", 1, 40));        // evicts "b", the least recently used
  CHECK(table.size() == 3);
  CHECK_FALSE(table.take("a", 1, 50));
  CHECK(table.take("b", 1, 60));        // forgotten: a full bucket again
  // A minute after the last touch every entry is gone.
  CHECK(table.take("e", 1, 60'100));
  CHECK(table.size() == 1);

  Admission many;
  for (int i = 0; i < 70'000; ++i) {
    many.admitHandshake("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), 5, 0);
  }
  CHECK(many.trackedAddresses() == smtpgate::RateTable::kDefaultMaxKeys);
}
