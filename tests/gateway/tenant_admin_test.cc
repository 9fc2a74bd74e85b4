#include "gateway/tenant_admin.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace smtpgate;
namespace fs = std::filesystem;
using Json = TenantJson;

namespace {

const char* const kTenants = R"({"tenants": [
  {"id": "contoso", "domains": ["contoso.com", "contoso.org"], "allow_legacy_tls_clients": true,
   "exceptions": [{"client": "192.0.2.10/32", "reason": "scanner", "expires": "2027-03-31"},
                  {"user": "printer@contoso.com"}]},
  {"id": "fabrikam", "domains": ["fabrikam.com"], "allow_legacy_tls_clients": false}
]})";

std::string readText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeText(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// A temporary directory with a tenants file, an audit path and an apply hook that records.
struct Fixture {
  fs::path dir;
  TenantAdminContext ctx;
  std::vector<policy::TenantDirectory> applied;

  explicit Fixture(const std::string& tenants = kTenants) {
    std::string tmpl = (fs::temp_directory_path() / "tenant-admin-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    ctx.tenantsPath = (dir / "tenants.json").string();
    ctx.auditPath = (dir / "state" / "audit.jsonl").string();
    ctx.apply = [this](const policy::TenantDirectory& d) { applied.push_back(d); };
    if (!tenants.empty()) {
      writeText(ctx.tenantsPath, tenants);
    }
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  AdminResponse call(const std::string& method, const std::string& path,
                     const std::string& body = "",
                     std::multimap<std::string, std::string> query = {}) {
    AdminRequest req;
    req.method = method;
    req.path = path;
    req.body = body;
    req.query = std::move(query);
    req.actor = "cli tester@host (127.0.0.1)";
    return handleTenantRequest(req, ctx);
  }

  Json file() const { return Json::parse(readText(ctx.tenantsPath)); }

  std::vector<Json> audit() const {
    std::vector<Json> out;
    std::ifstream in(ctx.auditPath);
    std::string line;
    while (std::getline(in, line)) {
      out.push_back(Json::parse(line));
    }
    return out;
  }

  std::set<std::string> files() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
      out.insert(e.path().filename().string());
    }
    return out;
  }
};

Json bodyOf(const AdminResponse& r) { return Json::parse(r.body); }

}  // namespace

TEST_CASE("tenant admin: GET lists tenants in the file's format with exception indexes",
          "[tenant_admin]") {
  Fixture f;
  auto r = f.call("GET", "/api/v1/tenants");
  REQUIRE(r.status == 200);
  CHECK(r.contentType == "application/json");
  Json body = bodyOf(r);
  REQUIRE(body["tenants"].size() == 2);
  const Json& contoso = body["tenants"][0];
  CHECK(contoso["id"] == "contoso");
  CHECK(contoso["domains"] == Json::array({"contoso.com", "contoso.org"}));
  CHECK(contoso["allow_legacy_tls_clients"] == true);
  REQUIRE(contoso["exceptions"].size() == 2);
  CHECK(contoso["exceptions"][0] == Json::parse(R"({"index": 0, "client": "192.0.2.10/32",
                                       "expires": "2027-03-31", "reason": "scanner"})"));
  CHECK(contoso["exceptions"][1] == Json::parse(R"({"index": 1, "user": "printer@contoso.com"})"));
  CHECK(body["tenants"][1]["exceptions"] == Json::array());

  auto one = f.call("GET", "/api/v1/tenants/fabrikam");
  REQUIRE(one.status == 200);
  CHECK(bodyOf(one)["tenant"]["id"] == "fabrikam");
  CHECK(bodyOf(one)["revision"].get<std::string>().size() == 16);
  CHECK(f.call("GET", "/api/v1/tenants/FABRIKAM").status == 200);  // ids are case-insensitive

  auto missing = f.call("GET", "/api/v1/tenants/northwind");
  CHECK(missing.status == 404);
  CHECK(bodyOf(missing)["error"] == "no tenant \"northwind\"");
  CHECK(f.call("GET", "/api/v1/tenants/a/b").status == 404);
}

TEST_CASE("tenant admin: no tenants file yet is an empty list, and PUT creates it",
          "[tenant_admin]") {
  Fixture f("");
  auto r = f.call("GET", "/api/v1/tenants");
  REQUIRE(r.status == 200);
  CHECK(bodyOf(r)["tenants"] == Json::array());
  auto created = f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.com"]})");
  REQUIRE(created.status == 201);
  CHECK(bodyOf(created)["tenant"]["allow_legacy_tls_clients"] == false);
  CHECK(f.file()["tenants"][0]["id"] == "contoso");
  CHECK(f.audit().at(0)["action"] == "create");
}

TEST_CASE("tenant admin: PUT flips allow_legacy_tls_clients, writes, applies and audits",
          "[tenant_admin]") {
  Fixture f;
  REQUIRE(::chmod(f.ctx.tenantsPath.c_str(), 0640) == 0);
  Json tenant = bodyOf(f.call("GET", "/api/v1/tenants/contoso"))["tenant"];
  Json before = tenant;
  tenant["allow_legacy_tls_clients"] = false;  // PUT back what GET gave, "index" included

  auto r = f.call("PUT", "/api/v1/tenants/contoso", tenant.dump());
  REQUIRE(r.status == 200);
  Json body = bodyOf(r);
  CHECK(body["tenant"] == tenant);
  CHECK(body["revision"] != bodyOf(f.call("GET", "/api/v1/tenants/fabrikam"))["revision"]);

  // The file: rewritten in the canonical format, other tenants untouched, mode kept.
  Json file = f.file();
  CHECK(file["tenants"][0]["allow_legacy_tls_clients"] == false);
  CHECK(file["tenants"][0]["exceptions"][0].contains("index") == false);
  CHECK(file["tenants"][1]["id"] == "fabrikam");
  struct stat st {};
  REQUIRE(::stat(f.ctx.tenantsPath.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  // Atomic write: nothing left beside the file but its lock; the audit lives in the state dir.
  CHECK(f.files() == std::set<std::string>{"tenants.json", "tenants.json.lock", "state"});

  // Applied at once: the hook got the new directory.
  REQUIRE(f.applied.size() == 1);
  REQUIRE(f.applied[0].byId("contoso") != nullptr);
  CHECK_FALSE(f.applied[0].byId("contoso")->allowLegacyTlsClients);
  CHECK(f.applied[0].forDomain("fabrikam.com") != nullptr);

  // Audited: who, when, old -> new, in the answer and in the file.
  auto audit = f.audit();
  REQUIRE(audit.size() == 1);
  const Json& e = audit[0];
  CHECK(e == body["audit"]);
  CHECK(e["actor"] == "cli tester@host (127.0.0.1)");
  CHECK(e["tenant"] == "contoso");
  CHECK(e["action"] == "set");
  CHECK(e["old"]["allow_legacy_tls_clients"] == true);
  CHECK(e["new"]["allow_legacy_tls_clients"] == false);
  CHECK(e["old"]["exceptions"].size() == 2);
  CHECK(e["time"].get<std::string>().size() == 20);  // 2026-11-28T01:02:03Z
  CHECK(e["time"].get<std::string>().back() == 'Z');

  // The same PUT again changes nothing: no write, no apply, no audit entry.
  auto again = f.call("PUT", "/api/v1/tenants/contoso", tenant.dump());
  REQUIRE(again.status == 200);
  CHECK(bodyOf(again)["audit"].is_null());
  CHECK(f.applied.size() == 1);
  CHECK(f.audit().size() == 1);
}

TEST_CASE("tenant admin: create with PUT, delete with DELETE", "[tenant_admin]") {
  Fixture f;
  auto created = f.call("PUT", "/api/v1/tenants/northwind",
                        R"({"id": "northwind", "domains": ["NorthWind.example"],
                            "allow_legacy_tls_clients": true})");
  REQUIRE(created.status == 201);
  CHECK(bodyOf(created)["tenant"]["domains"] == Json::array({"northwind.example"}));
  CHECK(bodyOf(created)["audit"]["action"] == "create");
  CHECK(bodyOf(created)["audit"]["old"].is_null());
  CHECK(f.file()["tenants"].size() == 3);
  CHECK(f.applied.back().forDomain("northwind.example") != nullptr);

  auto deleted = f.call("DELETE", "/api/v1/tenants/northwind");
  REQUIRE(deleted.status == 200);
  CHECK(bodyOf(deleted)["deleted"] == "northwind");
  CHECK(bodyOf(deleted)["audit"]["action"] == "delete");
  CHECK(bodyOf(deleted)["audit"]["new"].is_null());
  CHECK(f.file()["tenants"].size() == 2);
  CHECK(f.applied.back().forDomain("northwind.example") == nullptr);
  CHECK(f.call("DELETE", "/api/v1/tenants/northwind").status == 404);
  CHECK(f.audit().size() == 2);
}

TEST_CASE("tenant admin: invalid changes are 422 with JSON pointers and change nothing",
          "[tenant_admin]") {
  Fixture f;
  const std::string original = readText(f.ctx.tenantsPath);

  // A domain of another tenant: caught by the validation of the whole document.
  auto clash =
      f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.com", "fabrikam.com"]})");
  REQUIRE(clash.status == 422);
  Json body = bodyOf(clash);
  CHECK(body["error"] == "the change to tenant \"contoso\" is invalid");
  CHECK(body["errors"] == Json::array({"/tenants/0/domains/1: fabrikam.com already belongs to "
                                       "tenant \"fabrikam\" (/tenants/1/domains/0)"}));

  auto bad = f.call("PUT", "/api/v1/tenants/contoso",
                    R"({"domains": ["not a domain"], "allow_legacy_tls_clients": "yes",
                        "exceptions": [{"client": "192.0.2.300/32"}, {"colour": "red"}]})");
  REQUIRE(bad.status == 422);
  auto errors = bodyOf(bad)["errors"];
  REQUIRE(errors.size() >= 4);
  CHECK(errors[0] == "/tenants/0/domains/0: must be a DNS name");
  CHECK(errors[1].get<std::string>().rfind("/tenants/0/allow_legacy_tls_clients: ", 0) == 0);
  CHECK(errors[2] ==
        "/tenants/0/exceptions/0/client: \"192.0.2.300/32\" is not an IPv4 or IPv6 network");
  CHECK(errors[3].get<std::string>().rfind("/tenants/0/exceptions/1", 0) == 0);

  // A new tenant's pointers are those of its place in the document.
  auto badNew = f.call("PUT", "/api/v1/tenants/northwind", R"({"domains": []})");
  REQUIRE(badNew.status == 422);
  CHECK(bodyOf(badNew)["errors"] ==
        Json::array({"/tenants/2/domains: must list at least one domain"}));
  CHECK(f.call("PUT", "/api/v1/tenants/bad%20id", R"({"domains": ["x.example"]})").status == 422);

  auto mismatch = f.call("PUT", "/api/v1/tenants/contoso", R"({"id": "fabrikam"})");
  CHECK(mismatch.status == 422);
  CHECK(bodyOf(mismatch)["errors"][0].get<std::string>().find("does not match") !=
        std::string::npos);

  auto notJson = f.call("PUT", "/api/v1/tenants/contoso", "{\"domains\": [");
  CHECK(notJson.status == 400);
  CHECK(bodyOf(notJson)["error"].get<std::string>().rfind("invalid JSON: ", 0) == 0);
  CHECK(f.call("PUT", "/api/v1/tenants/contoso", "[1]").status == 400);

  CHECK(readText(f.ctx.tenantsPath) == original);
  CHECK(f.applied.empty());
  CHECK(f.audit().empty());
  CHECK(f.files() == std::set<std::string>{"tenants.json", "tenants.json.lock"});
}

TEST_CASE("tenant admin: methods and paths", "[tenant_admin]") {
  Fixture f;
  auto post = f.call("POST", "/api/v1/tenants");
  CHECK(post.status == 405);
  CHECK(post.headers["Allow"] == "GET");
  auto patch = f.call("PATCH", "/api/v1/tenants/contoso");
  CHECK(patch.status == 405);
  CHECK(patch.headers["Allow"] == "GET, PUT, DELETE");
  CHECK(f.call("DELETE", "/api/v1/audit").status == 405);
  CHECK(f.call("GET", "/api/v1/elsewhere").status == 404);
}

TEST_CASE("tenant admin: a hand edit between two PUTs is not lost", "[tenant_admin]") {
  Fixture f;
  REQUIRE(f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.com"]})").status ==
          200);
  // Someone edits the file by hand: adds a tenant and opts fabrikam in.
  Json file = f.file();
  file["tenants"][1]["allow_legacy_tls_clients"] = true;
  file["tenants"].push_back(
      Json::parse(R"({"id": "northwind", "domains": ["northwind.example"]})"));
  writeText(f.ctx.tenantsPath, file.dump(2));

  REQUIRE(f.call("PUT", "/api/v1/tenants/contoso",
                 R"({"domains": ["contoso.com"], "allow_legacy_tls_clients": true})")
              .status == 200);
  Json after = f.file();
  REQUIRE(after["tenants"].size() == 3);
  CHECK(after["tenants"][1]["allow_legacy_tls_clients"] == true);
  CHECK(after["tenants"][2]["id"] == "northwind");
  CHECK(after["tenants"][0]["allow_legacy_tls_clients"] == true);
  CHECK(f.applied.back().byId("northwind") != nullptr);

  // A hand edit that broke the file: changes are refused until it is fixed.
  writeText(f.ctx.tenantsPath, R"({"tenants": [{"id": "contoso", "domains": ["not a domain"]}]})");
  auto refused = f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.com"]})");
  CHECK(refused.status == 409);
  CHECK(bodyOf(refused)["errors"] == Json::array({"/tenants/0/domains/0: must be a DNS name"}));
  CHECK(f.call("GET", "/api/v1/tenants").status == 409);
}

TEST_CASE("tenant admin: a stale revision is refused with 409", "[tenant_admin]") {
  Fixture f;
  std::string revision = bodyOf(f.call("GET", "/api/v1/tenants/contoso"))["revision"];
  REQUIRE(f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.com"]})",
                 {{"revision", revision}})
              .status == 200);
  auto stale = f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.org"]})",
                      {{"revision", revision}});
  CHECK(stale.status == 409);
  CHECK(bodyOf(stale)["current_revision"] ==
        bodyOf(f.call("GET", "/api/v1/tenants/contoso"))["revision"]);
  // Creating under "none" fails once the tenant exists.
  CHECK(f.call("PUT", "/api/v1/tenants/contoso", R"({"domains": ["contoso.com"]})",
               {{"revision", "none"}})
            .status == 409);
}

TEST_CASE("tenant admin: the edit waits for the lock held by another editor", "[tenant_admin]") {
  Fixture f;
  const std::string lockPath = f.ctx.tenantsPath + ".lock";
  int fd = ::open(lockPath.c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  // While the "offline CLI" holds the lock and edits by hand, the API waits for it...
  auto pending = std::async(std::launch::async, [&f] {
    return f.call("PUT", "/api/v1/tenants/fabrikam",
                  R"({"domains": ["fabrikam.com"], "allow_legacy_tls_clients": true})");
  });
  CHECK(pending.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  Json file = f.file();
  file["tenants"][0]["allow_legacy_tls_clients"] = false;
  writeText(f.ctx.tenantsPath, file.dump(2));
  ::flock(fd, LOCK_UN);
  ::close(fd);
  // ...and then builds on what the other editor wrote.
  auto r = pending.get();
  REQUIRE(r.status == 200);
  Json after = f.file();
  CHECK(after["tenants"][0]["allow_legacy_tls_clients"] == false);
  CHECK(after["tenants"][1]["allow_legacy_tls_clients"] == true);
}

TEST_CASE("tenant admin: a lock held for long gets 503, not a frozen admin thread",
          "[tenant_admin]") {
  Fixture f;
  const std::string before = readText(f.ctx.tenantsPath);
  int fd = ::open((f.ctx.tenantsPath + ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);  // e.g. an offline edit stopped with Ctrl-Z
  const auto start = std::chrono::steady_clock::now();
  AdminResponse r = f.call("PUT", "/api/v1/tenants/fabrikam",
                           R"({"domains": ["fabrikam.com"], "allow_legacy_tls_clients": true})");
  const auto waited = std::chrono::steady_clock::now() - start;
  ::close(fd);
  CHECK(r.status == 503);
  CHECK(bodyOf(r)["error"].get<std::string>().find("is locked") != std::string::npos);
  CHECK(waited < std::chrono::seconds(10));
  CHECK(readText(f.ctx.tenantsPath) == before);
  CHECK(f.applied.empty());
  CHECK(f.audit().empty());
}

TEST_CASE("tenant admin: exception add and remove are audited as such", "[tenant_admin]") {
  Fixture f;
  auto added = editTenant(f.ctx, "contoso", "offline root@host", [](Json& t) {
    t["exceptions"].push_back(Json{{"ehlo", "Scanner-7.Contoso.test"}, {"reason", "3rd floor"}});
    return TenantMutationError{};
  });
  REQUIRE(added.status == 200);
  Json entry = bodyOf(added)["audit"];
  CHECK(entry["action"] == "exception add");
  CHECK(entry["actor"] == "offline root@host");
  CHECK(entry["new"]["exceptions"][2] ==
        Json::parse(R"({"ehlo": "scanner-7.contoso.test", "reason": "3rd floor"})"));
  CHECK(bodyOf(added)["tenant"]["exceptions"][2]["index"] == 2);

  auto removed = editTenant(f.ctx, "contoso", "offline root@host", [](Json& t) {
    t["exceptions"].erase(t["exceptions"].begin());
    return TenantMutationError{};
  });
  REQUIRE(removed.status == 200);
  CHECK(bodyOf(removed)["audit"]["action"] == "exception remove");
  CHECK(f.file()["tenants"][0]["exceptions"].size() == 2);

  auto refused = editTenant(f.ctx, "contoso", "x", [](Json&) {
    return TenantMutationError{404, "tenant \"contoso\" has no exception 9 (0..1)"};
  });
  CHECK(refused.status == 404);
  CHECK(bodyOf(refused)["error"] == "tenant \"contoso\" has no exception 9 (0..1)");
  CHECK(f.audit().size() == 2);
}

TEST_CASE("tenant admin: GET /api/v1/audit filters by tenant, newest first, with a limit",
          "[tenant_admin]") {
  Fixture f;
  CHECK(bodyOf(f.call("GET", "/api/v1/audit"))["audit"] == Json::array());
  for (bool allow : {false, true, false}) {
    Json t = {{"domains", {"contoso.com"}}, {"allow_legacy_tls_clients", allow}};
    REQUIRE(f.call("PUT", "/api/v1/tenants/contoso", t.dump()).status == 200);
  }
  REQUIRE(f.call("PUT", "/api/v1/tenants/fabrikam", R"({"domains": ["fabrikam.com"],
              "allow_legacy_tls_clients": true})")
              .status == 200);
  // A torn line (a crash mid-append) does not hide the rest.
  std::ofstream(f.ctx.auditPath, std::ios::app) << "{\"time\": \"2026";

  Json all = bodyOf(f.call("GET", "/api/v1/audit"))["audit"];
  REQUIRE(all.size() == 4);
  CHECK(all[0]["tenant"] == "fabrikam");
  Json contoso = bodyOf(f.call("GET", "/api/v1/audit", "", {{"tenant", "contoso"}}))["audit"];
  REQUIRE(contoso.size() == 3);
  CHECK(contoso[0]["new"]["allow_legacy_tls_clients"] == false);
  CHECK(contoso[0]["old"]["allow_legacy_tls_clients"] == true);
  CHECK(contoso[2]["old"]["allow_legacy_tls_clients"] == true);  // the original
  Json limited =
      bodyOf(f.call("GET", "/api/v1/audit", "", {{"tenant", "contoso"}, {"limit", "1"}}))["audit"];
  REQUIRE(limited.size() == 1);
  CHECK(limited[0] == contoso[0]);
  CHECK(f.call("GET", "/api/v1/audit", "", {{"limit", "0"}}).status == 400);
  CHECK(f.call("GET", "/api/v1/audit", "", {{"limit", "x"}}).status == 400);
}

TEST_CASE("tenant admin: without a tenants file, changes are refused", "[tenant_admin]") {
  TenantAdminContext ctx;
  AdminRequest req;
  req.method = "GET";
  req.path = "/api/v1/tenants";
  CHECK(handleTenantRequest(req, ctx).status == 200);
  req.method = "PUT";
  req.path = "/api/v1/tenants/contoso";
  req.body = R"({"domains": ["contoso.com"]})";
  auto r = handleTenantRequest(req, ctx);
  CHECK(r.status == 409);
  CHECK(Json::parse(r.body)["error"].get<std::string>().find("no tenants file") !=
        std::string::npos);
}

TEST_CASE("tenant admin: errors of an edited tenant in the middle keep their real pointers",
          "[tenant_admin]") {
  Fixture f(R"({"tenants": [
    {"id": "a", "domains": ["a.example"]},
    {"id": "b", "domains": ["b.example"]},
    {"id": "c", "domains": ["c.example"]}]})");
  auto r = f.call("PUT", "/api/v1/tenants/b", R"({"domains": ["c.example", "bad domain"]})");
  REQUIRE(r.status == 422);
  CHECK(bodyOf(r)["errors"] ==
        Json::array({"/tenants/1/domains/0: c.example already belongs to tenant \"c\" "
                     "(/tenants/2/domains/0)",
                     "/tenants/1/domains/1: must be a DNS name"}));
  // A valid change keeps the document's order.
  REQUIRE(
      f.call("PUT", "/api/v1/tenants/b", R"({"domains": ["b.example", "b2.example"]})").status ==
      200);
  Json file = f.file();
  CHECK(file["tenants"][0]["id"] == "a");
  CHECK(file["tenants"][1]["domains"] == Json::array({"b.example", "b2.example"}));
  CHECK(file["tenants"][2]["id"] == "c");
}
