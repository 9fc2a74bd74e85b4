#include "gateway/users_file.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace smtpgate;

namespace {

// Made once with `openssl passwd -6 -salt Xq3t9sLr2mVb 'correct horse'`.
const char* const kOpenSslHash =
    "$6$Xq3t9sLr2mVb$aHL06/SCSJ5Si27jWm75DExQsGFpLLulPaS5PXU5gnqZ9aM/TP4zImhmtmkeeNiohj1WbutEl/"
    "Hx2DYdUqhO80";

std::vector<std::string> parseErrors(const std::string& text) {
  UsersFile users;
  std::vector<std::string> errors;
  bool ok = users.parse(text, "users.txt", errors);
  CHECK(ok == errors.empty());
  return errors;
}

}  // namespace

TEST_CASE("users file: comments, blank lines, CRLF and case") {
  UsersFile users;
  std::vector<std::string> errors;
  std::string text = "# demo users\r\n\r\n  \nAlice@Example.COM:" + std::string(kOpenSslHash) +
                     "\r\n   # indented comment\nbob@example.com : " + kOpenSslHash;
  REQUIRE(users.parse(text, "users.txt", errors));
  CHECK(errors.empty());
  CHECK(users.size() == 2);
  CHECK(users.verify("alice@example.com", "correct horse"));
  CHECK(users.verify("ALICE@example.com", "correct horse"));
  CHECK(users.verify("bob@example.com", "correct horse"));
}

TEST_CASE("users file: errors carry the file name and line number") {
  std::string h = kOpenSslHash;
  CHECK(parseErrors("a@example.com " + h) ==
        std::vector<std::string>{"users.txt line 1: expected user@domain:HASH"});
  CHECK(parseErrors("\n\nalice:" + h) ==
        std::vector<std::string>{R"(users.txt line 3: "alice" is not user@domain)"});
  CHECK(parseErrors("@example.com:" + h) ==
        std::vector<std::string>{R"(users.txt line 1: "@example.com" is not user@domain)"});
  CHECK(parseErrors("a b@example.com:" + h) ==
        std::vector<std::string>{R"(users.txt line 1: "a b@example.com" is not user@domain)"});
  CHECK(parseErrors("a@example.com:plaintext") ==
        std::vector<std::string>{"users.txt line 1: unsupported hash for a@example.com "
                                 "(crypt(3) $y$, $gy$, $6$, $5$ or $2b$ expected)"});
  CHECK(parseErrors("a@example.com:$1$salt$md5") ==
        std::vector<std::string>{"users.txt line 1: unsupported hash for a@example.com "
                                 "(crypt(3) $y$, $gy$, $6$, $5$ or $2b$ expected)"});
  CHECK(parseErrors("a@example.com:$6$") ==
        std::vector<std::string>{"users.txt line 1: malformed hash for a@example.com"});
  CHECK(parseErrors("a@example.com:$6$salt$ha sh") ==
        std::vector<std::string>{"users.txt line 1: malformed hash for a@example.com"});
  CHECK(
      parseErrors("a@example.com:" + h + "\n# x\nA@EXAMPLE.com:" + h) ==
      std::vector<std::string>{"users.txt line 3: duplicate user a@example.com (first on line 1)"});
  // Every bad line is reported.
  CHECK(parseErrors("x\ny\na@example.com:" + h + "\nz") ==
        std::vector<std::string>{"users.txt line 1: expected user@domain:HASH",
                                 "users.txt line 2: expected user@domain:HASH",
                                 "users.txt line 4: expected user@domain:HASH"});
  // Other algorithms' prefixes are accepted as they are.
  CHECK(parseErrors("a@x.org:$y$j9T$salt$hash\nb@x.org:$5$rounds=1000$salt$hash\n"
                    "c@x.org:$2b$12$abcdefghijklmnopqrstuv\nd@x.org:$gy$j9T$salt$hash")
            .empty());
}

TEST_CASE("users file: a failed parse keeps nothing") {
  UsersFile users;
  std::vector<std::string> errors;
  REQUIRE(users.parse(std::string("a@example.com:") + kOpenSslHash, "u", errors));
  CHECK(users.size() == 1);
  CHECK_FALSE(users.parse(std::string("b@example.com:") + kOpenSslHash + "\nbad", "u", errors));
  CHECK(users.size() == 1);
  CHECK(users.verify("a@example.com", "correct horse"));
  CHECK_FALSE(users.verify("b@example.com", "correct horse"));
}

TEST_CASE("users file: load from disk") {
  char pattern[] = "/tmp/smtpgate-users-test-XXXXXX";
  std::string dir = ::mkdtemp(pattern);
  std::ofstream(dir + "/users.txt") << "a@example.com:" << kOpenSslHash << "\nnope\n";
  UsersFile users;
  std::vector<std::string> errors;
  CHECK_FALSE(users.load(dir + "/users.txt", errors));
  CHECK(errors == std::vector<std::string>{dir + "/users.txt line 2: expected user@domain:HASH"});
  errors.clear();
  CHECK_FALSE(users.load(dir + "/none.txt", errors));
  CHECK(errors ==
        std::vector<std::string>{"cannot read " + dir + "/none.txt: No such file or directory"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("verify: a fixed openssl $6$ hash") {
  UsersFile users;
  std::vector<std::string> errors;
  REQUIRE(users.parse(std::string("alice@example.com:") + kOpenSslHash, "users.txt", errors));
  CHECK(users.verify("alice@example.com", "correct horse"));
  CHECK_FALSE(users.verify("alice@example.com", "correct horse "));
  CHECK_FALSE(users.verify("alice@example.com", "Correct horse"));
  CHECK_FALSE(users.verify("alice@example.com", ""));
  // crypt(3) stops at NUL: the rest must not be ignored.
  CHECK_FALSE(users.verify("alice@example.com", std::string("correct horse\0x", 15)));
  // Unknown users fail, even with a password that is right for someone else.
  CHECK_FALSE(users.verify("mallory@example.com", "correct horse"));
  CHECK_FALSE(users.verify("", ""));
}

TEST_CASE("verify: hashes made by hashPassword") {
  std::string hash = UsersFile::hashPassword("s3cret pass");
  REQUIRE_FALSE(hash.empty());
  // yescrypt on Debian's libxcrypt; SHA-512 where it is missing.
  CHECK((hash.rfind("$y$", 0) == 0 || hash.rfind("$6$", 0) == 0));
  CHECK(UsersFile::hashPassword("s3cret pass") != hash);  // fresh salt each time

  UsersFile users;
  std::vector<std::string> errors;
  REQUIRE(users.parse("bob@example.com:" + hash, "users.txt", errors));
  CHECK(users.verify("bob@example.com", "s3cret pass"));
  CHECK(users.verify("BOB@EXAMPLE.COM", "s3cret pass"));
  CHECK_FALSE(users.verify("bob@example.com", "s3cret pas"));
  CHECK_FALSE(users.verify("bob@example.org", "s3cret pass"));

  UsersFile empty;
  CHECK_FALSE(empty.verify("bob@example.com", "s3cret pass"));
}

TEST_CASE("verify is thread-safe") {
  std::string hash = UsersFile::hashPassword("pw");
  UsersFile users;
  std::vector<std::string> errors;
  REQUIRE(users.parse("a@x.org:" + hash + "\nb@x.org:" + kOpenSslHash, "users.txt", errors));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&users, &wrong, t] {
      for (int i = 0; i < 3; ++i) {
        bool expectA = (t + i) % 2 == 0;
        bool ok =
            expectA ? users.verify("a@x.org", "pw") : users.verify("b@x.org", "correct horse");
        bool bad = expectA ? users.verify("a@x.org", "nope") : users.verify("b@x.org", "nope");
        if (!ok || bad) {
          ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(wrong == 0);
}
