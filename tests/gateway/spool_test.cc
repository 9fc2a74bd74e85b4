#include "gateway/spool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace smtpgate;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/smtpgate-spool-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t countFiles(const std::string& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) {
    ++n;
  }
  return n;
}

smtp::Message sampleMessage() {
  smtp::Message m;
  m.envelope.mailFrom = "alice@example.com";
  m.envelope.mailParams = {"BODY=8BITMIME", "SIZE=42"};
  m.envelope.rcptTo = {"bob@example.org", "carol@example.org"};
  m.helo = "client.example.com";
  m.esmtp = true;
  m.authUser = "alice@example.com";
  return m;
}

SessionFacts tlsFacts() {
  SessionFacts f;
  f.sessionId = "S1";
  f.listener = "strict-starttls";
  f.endpoint = "strict";
  f.clientIp = "192.0.2.7";
  f.clientPort = 40000;
  f.tlsVersion = "1.3";
  f.tlsCipher = "TLS_AES_256_GCM_SHA384";
  f.sni = "smtp.example.com";
  f.tlsMaxOffered = "1.3";
  return f;
}

}  // namespace

TEST_CASE("makeId: fixed width, sortable by time, random tail") {
  std::string a = Spool::makeId(1'700'000'000'000'000ULL, 0);
  std::string b = Spool::makeId(1'700'000'000'000'001ULL, 0);
  std::string c = Spool::makeId(1'800'000'000'000'000ULL, ~0ULL);
  CHECK(a.size() == 19);
  CHECK(a.size() == c.size());
  CHECK(a < b);
  CHECK(b < c);
  CHECK(Spool::makeId(1, 1) != Spool::makeId(1, 2));
  CHECK(Spool::makeId(1'700'000'000'000'000ULL, 12345).substr(0, 11) == a.substr(0, 11));
  for (char ch : c) {
    CHECK(std::string("0123456789ABCDEFGHJKMNPQRSTVWXYZ").find(ch) != std::string::npos);
  }
}

TEST_CASE("prepare creates DIR, tmp and new with mode 0700") {
  TempDir tmp;
  Spool spool(tmp.path + "/a/b/spool");
  CHECK(spool.prepare() == "");
  for (const char* sub : {"", "/tmp", "/new"}) {
    struct stat st {};
    REQUIRE(::stat((spool.dir() + sub).c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 0777) == 0700);
  }
  CHECK(countFiles(spool.dir() + "/tmp") == 0);  // the probe is gone
  CHECK(spool.prepare() == "");                  // idempotent

  std::ofstream(tmp.path + "/file") << "x";
  CHECK(Spool(tmp.path + "/file").prepare() == tmp.path + "/file exists and is not a directory");
  CHECK(Spool(tmp.path + "/file/spool").prepare() ==
        "cannot create directory " + tmp.path + "/file/spool: Not a directory");
}

TEST_CASE("store writes the message and its envelope into new/") {
  TempDir tmp;
  Spool spool(tmp.path);
  REQUIRE(spool.prepare() == "");
  std::string content = "Received: from x\r\nSubject: hi\r\n\r\nbody\r\n.leading dot\r\n";
  std::string id;
  std::string error;
  REQUIRE(spool.store(sampleMessage(), content, tlsFacts(), id, error));
  CHECK(error.empty());
  CHECK(id.size() == 19);
  CHECK(readAll(tmp.path + "/new/" + id + ".eml") == content);
  CHECK(countFiles(tmp.path + "/tmp") == 0);
  CHECK(countFiles(tmp.path + "/new") == 2);

  auto j = nlohmann::json::parse(readAll(tmp.path + "/new/" + id + ".json"));
  CHECK(j["id"] == id);
  std::string received = j["received_at"];
  CHECK(received.size() == 20);
  CHECK(received[10] == 'T');
  CHECK(received.back() == 'Z');
  CHECK(j["mail_from"] == "alice@example.com");
  CHECK(j["mail_params"] == nlohmann::json({"BODY=8BITMIME", "SIZE=42"}));
  CHECK(j["rcpt_to"] == nlohmann::json({"bob@example.org", "carol@example.org"}));
  CHECK(j["helo"] == "client.example.com");
  CHECK(j["esmtp"] == true);
  CHECK(j["auth_user"] == "alice@example.com");
  CHECK(j["size"] == content.size());
  auto s = j["session"];
  CHECK(s["session_id"] == "S1");
  CHECK(s["listener"] == "strict-starttls");
  CHECK(s["endpoint"] == "strict");
  CHECK(s["client_ip"] == "192.0.2.7");
  CHECK(s["client_port"] == 40000);
  CHECK(s["tls"]["version"] == "1.3");
  CHECK(s["tls"]["cipher"] == "TLS_AES_256_GCM_SHA384");
  CHECK(s["tls"]["sni"] == "smtp.example.com");
  CHECK(s["tls"]["max_offered"] == "1.3");
}

TEST_CASE("store: plaintext session, null sender, hostile bytes, caller's id") {
  TempDir tmp;
  Spool spool(tmp.path);
  REQUIRE(spool.prepare() == "");
  smtp::Message m;
  m.envelope.rcptTo = {"bob@example.org"};
  m.helo = "bad\xff\xfe utf8";  // from the network: must not make the JSON writer throw
  SessionFacts f;
  f.endpoint = "legacy";
  std::string id = Spool::makeId(1'700'000'000'000'000ULL, 99);
  std::string error;
  REQUIRE(spool.store(m, "x\r\n", f, id, error));
  CHECK(id == Spool::makeId(1'700'000'000'000'000ULL, 99));
  auto j = nlohmann::json::parse(readAll(tmp.path + "/new/" + id + ".json"));
  CHECK(j["mail_from"] == "");
  CHECK(j["auth_user"].is_null());
  CHECK(j["esmtp"] == false);
  CHECK(j["session"]["tls"].is_null());
  CHECK(j["helo"].get<std::string>().rfind("bad", 0) == 0);

  // The same id again is refused, and the first message is untouched.
  CHECK_FALSE(spool.store(m, "other\r\n", f, id, error));
  CHECK(error.find("File exists") != std::string::npos);
  CHECK(readAll(tmp.path + "/new/" + id + ".eml") == "x\r\n");
  CHECK(countFiles(tmp.path + "/tmp") == 0);

  // Ids name files: nothing outside our alphabet is accepted.
  std::string evil = "../../etc/passwd";
  CHECK_FALSE(spool.store(m, "x", f, evil, error));
  CHECK(error == "invalid queue id");
}

TEST_CASE("concurrent stores get distinct ids") {
  TempDir tmp;
  Spool spool(tmp.path);
  REQUIRE(spool.prepare() == "");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::mutex mutex;
  std::set<std::string> ids;
  int failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id;
        std::string error;
        std::string content = "message " + std::to_string(t) + "/" + std::to_string(i) + "\r\n";
        bool ok = spool.store(sampleMessage(), content, tlsFacts(), id, error);
        std::lock_guard<std::mutex> lock(mutex);
        failures += ok ? 0 : 1;
        ids.insert(id);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(failures == 0);
  CHECK(ids.size() == kThreads * kPerThread);
  CHECK(countFiles(tmp.path + "/new") == 2 * kThreads * kPerThread);
  CHECK(countFiles(tmp.path + "/tmp") == 0);
}

TEST_CASE("a failing store reports why and leaves nothing behind") {
  TempDir tmp;
  std::string id;
  std::string error;

  SECTION("spool never prepared") {
    Spool spool(tmp.path + "/missing");
    CHECK_FALSE(spool.store(sampleMessage(), "x\r\n", tlsFacts(), id, error));
    CHECK(error.rfind("cannot create " + tmp.path + "/missing/tmp/", 0) == 0);
    CHECK(error.find(": No such file or directory") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp.path + "/missing"));
  }

  SECTION("new/ is a file: the rename fails after tmp/ was written") {
    Spool spool(tmp.path);
    fs::create_directory(tmp.path + "/tmp");
    std::ofstream(tmp.path + "/new") << "not a directory";
    CHECK_FALSE(spool.store(sampleMessage(), "x\r\n", tlsFacts(), id, error));
    CHECK(error.rfind("cannot rename ", 0) == 0);
    CHECK(error.find("Not a directory") != std::string::npos);
    CHECK(countFiles(tmp.path + "/tmp") == 0);
    CHECK(readAll(tmp.path + "/new") == "not a directory");
  }

  SECTION("the .eml cannot be renamed: the envelope already in new/ is removed") {
    Spool spool(tmp.path);
    REQUIRE(spool.prepare() == "");
    id = Spool::makeId(1'700'000'000'000'000ULL, 7);
    // A directory where the .eml should go makes only the second rename fail.
    fs::create_directory(tmp.path + "/new/" + id + ".eml");
    fs::create_directory(tmp.path + "/new/" + id + ".eml/x");
    CHECK_FALSE(spool.store(sampleMessage(), "x\r\n", tlsFacts(), id, error));
    CHECK(error.rfind("cannot rename ", 0) == 0);
    CHECK(countFiles(tmp.path + "/tmp") == 0);
    CHECK_FALSE(fs::exists(tmp.path + "/new/" + id + ".json"));
  }
}
