// The pure parts of cluster mode: migration ordering and planning, the SQL the PostgreSQL store
// sends (values only as parameters), text made storable, and the decoding of a tenants snapshot.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gateway/db_migrations.h"
#include "gateway/pg_connection.h"
#include "gateway/pg_tenant_store.h"
#include "gateway/pg_trace_sink.h"

using namespace smtpgate;

namespace {

std::vector<int> versionsOf(const std::vector<const Migration*>& list) {
  std::vector<int> out;
  for (const Migration* m : list) {
    out.push_back(m->version);
  }
  return out;
}

std::vector<Migration> threeMigrations() {
  std::vector<Migration> parsed;
  std::string error;
  REQUIRE(parseMigrations({{"0003_c.sql", "C"}, {"0001_a.sql", "A"}, {"0002_b.sql", "B"}},
                          parsed, error));
  return parsed;
}

}  // namespace

TEST_CASE("migrations: sorted by version whatever the order of the files") {
  auto parsed = threeMigrations();
  REQUIRE(parsed.size() == 3);
  CHECK(parsed[0].name == "0001_a");
  CHECK(parsed[0].sql == "A");
  CHECK(parsed[1].version == 2);
  CHECK(parsed[2].name == "0003_c");
}

TEST_CASE("migrations: bad names, gaps and duplicates are refused") {
  std::vector<Migration> parsed;
  std::string error;
  CHECK_FALSE(parseMigrations({{"1_a.sql", ""}}, parsed, error));
  CHECK(error.find("NNNN_name.sql") != std::string::npos);
  error.clear();
  CHECK_FALSE(parseMigrations({{"0001_a.txt", ""}}, parsed, error));
  CHECK_FALSE(parseMigrations({{"0001_a.sql", ""}, {"0003_c.sql", ""}}, parsed, error));
  CHECK(error.find("0003_c") != std::string::npos);
  CHECK_FALSE(parseMigrations({{"0001_a.sql", ""}, {"0001_b.sql", ""}}, parsed, error));
  CHECK_FALSE(parseMigrations({{"0002_b.sql", ""}}, parsed, error));
  CHECK(parsed.empty());
}

TEST_CASE("migrations: the plan runs what is missing, in order") {
  const auto all = threeMigrations();
  auto plan = planMigrations(all, {});
  CHECK(plan.error.empty());
  CHECK(plan.current == 0);
  CHECK(plan.latest == 3);
  CHECK(versionsOf(plan.pending) == std::vector<int>{1, 2, 3});

  plan = planMigrations(all, {2, 1});
  CHECK(plan.error.empty());
  CHECK(plan.current == 2);
  CHECK(versionsOf(plan.pending) == std::vector<int>{3});

  plan = planMigrations(all, {1, 2, 3});
  CHECK(plan.error.empty());
  CHECK(plan.pending.empty());
}

TEST_CASE("migrations: a newer or foreign schema is refused") {
  const auto all = threeMigrations();
  auto plan = planMigrations(all, {1, 2, 3, 4});
  CHECK(plan.error.find("newer") != std::string::npos);
  CHECK(plan.pending.empty());
  plan = planMigrations(all, {1, 3});
  CHECK(plan.error.find("out of sequence") != std::string::npos);
  CHECK(plan.pending.empty());
}

TEST_CASE("migrations: the embedded set is valid and starts with the initial schema") {
  const auto& builtin = builtinMigrations();
  REQUIRE_FALSE(builtin.empty());
  CHECK(builtin[0].name == "0001_initial");
  CHECK(builtin[0].sql.find("CREATE TABLE tenants") != std::string::npos);
  CHECK(builtin[0].sql.find("CREATE TABLE messages") != std::string::npos);
}

TEST_CASE("pg sql: ? placeholders are numbered, quoted text is left alone") {
  CHECK(numberedPlaceholders("SELECT a FROM t WHERE x = ? AND y IN (?, ?)") ==
        "SELECT a FROM t WHERE x = $1 AND y IN ($2, $3)");
  CHECK(numberedPlaceholders("SELECT '?' , ? WHERE r <> 'it''s?' AND s = ?") ==
        "SELECT '?' , $1 WHERE r <> 'it''s?' AND s = $2");
  CHECK(numberedPlaceholders("SELECT 1") == "SELECT 1");
}

TEST_CASE("pg sql: multi-row inserts number every value and hold none") {
  CHECK(buildTenantInsert(2) ==
        "INSERT INTO tenants (id, position, doc) VALUES ($1, $2, $3), ($4, $5, $6)");
  const std::string sessions = buildSessionInsert(2);
  CHECK(sessions.find("$36)") != std::string::npos);
  CHECK(sessions.find("$37") == std::string::npos);
  CHECK(sessions.find("ON CONFLICT (session_id) DO UPDATE") != std::string::npos);
  const std::string messages = buildMessageInsert(3);
  CHECK(messages.find("$51)") != std::string::npos);
  CHECK(messages.find("$52") == std::string::npos);

  // Hostile values stay parameters: the SQL text never changes with them.
  MessageTrace m;
  m.sessionId = "s1";
  m.sender = "x'); DROP TABLE messages; --@example.com";
  m.ehlo = "evil\xff\x00name";
  m.ehlo.push_back('\0');
  m.receivedMs = 1795651200000;
  m.size = 42;
  PgParams params;
  appendMessageParams(params, m);
  REQUIRE(params.size() == 17);
  CHECK(params.values()[0] == std::optional<std::string>("s1"));
  CHECK(params.values()[1] == std::optional<std::string>("1795651200000"));
  CHECK(params.values()[2] == std::optional<std::string>("2026-11-26"));
  CHECK(params.values()[11] == std::optional<std::string>(m.sender));
  CHECK(params.values()[6]->find('\0') == std::string::npos);
  CHECK(params.values()[13] == std::optional<std::string>("42"));
  CHECK(buildMessageInsert(1).find("DROP") == std::string::npos);

  SessionTrace s;
  s.sessionId = "s2";
  s.clientPort = 2525;
  s.messages = 3;
  PgParams sp;
  appendSessionParams(sp, s);
  REQUIRE(sp.size() == 18);
  CHECK(sp.values()[7] == std::optional<std::string>("2525"));
  CHECK(sp.values()[17] == std::optional<std::string>("3"));
}

TEST_CASE("pg text: NUL and invalid UTF-8 become U+FFFD, valid text is kept") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(pgSafeText("plain ascii") == "plain ascii");
  CHECK(pgSafeText("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(pgSafeText(std::string("a\0b", 3)) == "a" + fffd + "b");
  CHECK(pgSafeText("x\xFFy") == "x" + fffd + "y");
  CHECK(pgSafeText("\xC3") == fffd);                   // truncated sequence
  CHECK(pgSafeText("\xC0\xAF") == fffd + fffd);        // overlong
  CHECK(pgSafeText("\xED\xA0\x80") == fffd + fffd + fffd);  // surrogate
  CHECK(pgSafeText("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);  // above U+10FFFF
}

TEST_CASE("tenant snapshot: rows decode into the directory the file would give") {
  TenantSnapshot snapshot;
  std::vector<std::string> errors;
  REQUIRE(decodeTenantSnapshot(
      {R"({"id": "contoso", "domains": ["Contoso.COM"], "allow_legacy_tls_clients": true,
           "exceptions": [{"client": "192.0.2.10/32", "reason": "scanner"}]})",
       R"({"id": "fabrikam", "domains": ["fabrikam.com"]})"},
      snapshot, errors));
  CHECK(errors.empty());
  const auto* contoso = snapshot.directory.forDomain("contoso.com");
  REQUIRE(contoso != nullptr);
  CHECK(contoso->allowLegacyTlsClients);
  CHECK(contoso->exceptions.size() == 1);
  REQUIRE(snapshot.directory.forDomain("fabrikam.com") != nullptr);
  CHECK_FALSE(snapshot.directory.forDomain("fabrikam.com")->allowLegacyTlsClients);
  REQUIRE(snapshot.tenants.size() == 2);
  CHECK(snapshot.tenants[0]["domains"][0] == "contoso.com");  // canonical
  CHECK(snapshot.tenants[1]["id"] == "fabrikam");
}

TEST_CASE("tenant snapshot: an invalid row is refused with its pointer") {
  TenantSnapshot snapshot;
  std::vector<std::string> errors;
  CHECK_FALSE(decodeTenantSnapshot(
      {R"({"id": "a", "domains": ["a.com"]})", R"({"id": "b", "domains": ["not a domain"]})"},
      snapshot, errors));
  REQUIRE_FALSE(errors.empty());
  CHECK(errors[0].find("/tenants/1/domains/0") != std::string::npos);
  errors.clear();
  CHECK_FALSE(decodeTenantSnapshot({"{not json"}, snapshot, errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "/tenants/0: not valid JSON");
  errors.clear();
  // Two tenants claiming one domain: the same clash the file refuses.
  CHECK_FALSE(decodeTenantSnapshot(
      {R"({"id": "a", "domains": ["x.com"]})", R"({"id": "b", "domains": ["x.com"]})"},
      snapshot, errors));
  CHECK_FALSE(errors.empty());
  CHECK(snapshot.directory.all().empty());  // untouched
}
