#include "gateway/pg_tenant_store.h"

#include <fmt/format.h>

#include <chrono>

#include "gateway/tenants_file.h"

namespace smtpgate {
namespace {

using Json = TenantJson;

// Tenants rewritten per INSERT statement: 3 parameters each, well below libpq's 65535.
constexpr std::size_t kTenantRowsPerInsert = 1000;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool decodeTenantSnapshot(const std::vector<std::string>& docs, TenantSnapshot& out,
                          std::vector<std::string>& errors) {
  Json list = Json::array();
  for (std::size_t i = 0; i < docs.size(); ++i) {
    Json doc = Json::parse(docs[i], nullptr, false);
    if (doc.is_discarded()) {
      errors.push_back(fmt::format("/tenants/{}: not valid JSON", i));
      return false;
    }
    list.push_back(std::move(doc));
  }
  policy::TenantDirectory directory;
  std::vector<ConfigError> problems;
  if (!parseTenants(Json{{"tenants", list}}.dump(), directory, problems)) {
    for (const auto& p : problems) {
      errors.push_back(p.str());
    }
    return false;
  }
  out.directory = std::move(directory);
  out.tenants = Json::parse(tenantsToJson(out.directory))["tenants"];
  return true;
}

bool readTenantSnapshot(PgConnection& db, TenantSnapshot& out, std::vector<std::string>& errors,
                        std::string& error) {
  // One statement: the version and the rows come from the same snapshot of the database.
  PgResult rows;
  if (!db.exec("SELECT s.version, t.doc FROM tenant_state s LEFT JOIN tenants t ON TRUE "
               "ORDER BY t.position",
               {}, &rows, error)) {
    return false;
  }
  std::vector<std::string> docs;
  int64_t version = 0;
  for (int r = 0; r < rows.rows(); ++r) {
    version = rows.integer(r, 0);
    if (!rows.isNull(r, 1)) {
      docs.push_back(rows.text(r, 1));
    }
  }
  TenantSnapshot snapshot;
  if (!decodeTenantSnapshot(docs, snapshot, errors)) {
    error = "the tenants in PostgreSQL are invalid";
    return false;
  }
  snapshot.version = version;
  out = std::move(snapshot);
  return true;
}

std::string buildTenantInsert(std::size_t rows) {
  std::string sql = "INSERT INTO tenants (id, position, doc) VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t p = r * 3;
    sql += fmt::format("{}(${}, ${}, ${})", r == 0 ? "" : ", ", p + 1, p + 2, p + 3);
  }
  return sql;
}

PgConnection* PgTenantStore::connection(std::string& error) {
  if (db_ && db_->healthy()) {
    return db_.get();
  }
  db_ = PgConnection::connect(conninfo_, error);
  return db_.get();
}

bool PgTenantStore::read(Json& tenants, int& status, std::string& error,
                         std::vector<std::string>& errors) {
  std::lock_guard lock(mutex_);
  PgConnection* db = connection(error);
  TenantSnapshot snapshot;
  if (db == nullptr || !readTenantSnapshot(*db, snapshot, errors, error)) {
    status = db == nullptr || !db->healthy() ? 503 : errors.empty() ? 500 : 409;
    return false;
  }
  tenants = std::move(snapshot.tenants);
  return true;
}

// A change in one transaction on the store's connection, which it holds (with the mutex) until
// it goes.
class PgTenantChange : public TenantChange {
 public:
  PgTenantChange(PgTenantStore& store, std::unique_lock<std::mutex> lock, PgConnection& db,
                 Json tenants)
      : store_(store), lock_(std::move(lock)), db_(db), tenants_(std::move(tenants)) {}
  ~PgTenantChange() override {
    if (!done_) {
      std::string ignored;
      db_.exec("ROLLBACK", ignored);
    }
  }
  const Json& tenants() const override { return tenants_; }

  bool commit(const policy::TenantDirectory& next, const Json& entry,
              std::string& error) override {
    done_ = true;
    const Json list = Json::parse(tenantsToJson(next))["tenants"];
    PgResult version;
    bool ok = db_.exec("DELETE FROM tenants", error);
    for (std::size_t begin = 0; ok && begin < list.size(); begin += kTenantRowsPerInsert) {
      const std::size_t end = std::min(list.size(), begin + kTenantRowsPerInsert);
      PgParams params;
      for (std::size_t i = begin; i < end; ++i) {
        params.text(list[i]["id"].get<std::string>())
            .integer(static_cast<int64_t>(i))
            .text(list[i].dump(-1, ' ', false, Json::error_handler_t::replace));
      }
      ok = db_.exec(buildTenantInsert(end - begin), params, nullptr, error);
    }
    ok = ok && db_.exec("UPDATE tenant_state SET version = version + 1 RETURNING version", {},
                        &version, error);
    if (ok) {
      PgParams audit;
      audit.integer(nowMs())
          .text(entry.value("tenant", std::string()))
          .text(entry.dump(-1, ' ', false, Json::error_handler_t::replace));
      ok = db_.exec("INSERT INTO tenant_audit (at_ms, tenant, entry) VALUES ($1, $2, $3)", audit,
                    nullptr, error);
    }
    if (ok) {
      // Delivered to the listeners at COMMIT, and only if the transaction commits.
      PgParams notify;
      notify.text(kTenantChannel).text(version.text(0, 0));
      ok = db_.exec("SELECT pg_notify($1, $2)", notify, nullptr, error) &&
           db_.exec("COMMIT", error);
    }
    if (!ok) {
      std::string ignored;
      db_.exec("ROLLBACK", ignored);
      error = fmt::format("nothing was changed: {}", error);
      return false;
    }
    store_.committed_.store(version.integer(0, 0));
    return true;
  }

 private:
  PgTenantStore& store_;
  std::unique_lock<std::mutex> lock_;
  PgConnection& db_;
  Json tenants_;
  bool done_ = false;
};

std::unique_ptr<TenantChange> PgTenantStore::begin(int& status, std::string& error,
                                                   std::vector<std::string>& errors) {
  std::unique_lock lock(mutex_);
  PgConnection* db = connection(error);
  if (db == nullptr) {
    status = 503;
    return nullptr;
  }
  // The row lock on tenant_state serializes changes across every instance of the cluster.
  TenantSnapshot snapshot;
  std::string ignored;
  if (!db->exec("BEGIN", error) ||
      !db->exec("SELECT version FROM tenant_state FOR UPDATE", error) ||
      !readTenantSnapshot(*db, snapshot, errors, error)) {
    db->exec("ROLLBACK", ignored);
    status = !db->healthy() ? 503 : errors.empty() ? 500 : 409;
    return nullptr;
  }
  return std::make_unique<PgTenantChange>(*this, std::move(lock), *db,
                                          std::move(snapshot.tenants));
}

bool PgTenantStore::audit(const std::string& tenant, int limit, std::vector<Json>& entries,
                          std::string& error) {
  std::lock_guard lock(mutex_);
  PgConnection* db = connection(error);
  if (db == nullptr) {
    return false;
  }
  PgParams params;
  params.text(tenant).integer(limit);
  PgResult rows;
  if (!db->exec("SELECT entry FROM tenant_audit WHERE $1 = '' OR lower(tenant) = $1 "
                "ORDER BY id DESC LIMIT $2",
                params, &rows, error)) {
    return false;
  }
  for (int r = 0; r < rows.rows(); ++r) {
    Json entry = Json::parse(rows.text(r, 0), nullptr, false);
    if (entry.is_object()) {
      entries.push_back(std::move(entry));
    }
  }
  return true;
}

}  // namespace smtpgate
