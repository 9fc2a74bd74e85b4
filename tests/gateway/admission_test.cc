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
