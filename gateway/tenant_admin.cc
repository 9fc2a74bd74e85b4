#include "gateway/tenant_admin.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "gateway/log.h"
#include "gateway/tenants_file.h"
#include "gateway/time_format.h"
#include "policy/ascii.h"

namespace smtpgate {
namespace {

namespace fs = std::filesystem;
using Json = TenantJson;

constexpr const char* kTenantsPath = "/api/v1/tenants";
constexpr const char* kAuditPath = "/api/v1/audit";
constexpr int kDefaultAuditLimit = 100;
constexpr int kMaxAuditLimit = 10000;
constexpr std::size_t kMaxActorLength = 200;
constexpr std::chrono::seconds kLockWait{5};

AdminResponse respond(int status, const Json& body) {
  AdminResponse r;
  r.status = status;
  r.contentType = "application/json";
  r.body = body.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  r.headers["Cache-Control"] = "no-store";
  return r;
}

AdminResponse failure(int status, const std::string& message,
                      const std::vector<std::string>& errors = {}) {
  Json body = {{"error", message}};
  if (!errors.empty()) {
    body["errors"] = errors;
  }
  return respond(status, body);
}

AdminResponse methodNotAllowed(const std::string& allow) {
  AdminResponse r = failure(405, "method not allowed; allowed: " + allow);
  r.headers["Allow"] = allow;
  return r;
}

std::string errnoText(int error) { return std::strerror(error); }

// An exclusive flock on TENANTS.lock for one read-modify-write: the API thread and an offline
// CLI (another process) take turns. Released when the object goes.
class TenantsLock {
 public:
  explicit TenantsLock(const std::string& tenantsPath) : path_(tenantsPath + ".lock") {}
  ~TenantsLock() {
    if (fd_ >= 0) {
      ::close(fd_);  // closing the descriptor releases the lock
    }
  }
  TenantsLock(const TenantsLock&) = delete;
  TenantsLock& operator=(const TenantsLock&) = delete;

  bool acquire(std::string& error) {
    // Read-only is enough for flock: a lock file that root created (an offline edit) still
    // serves the gateway running as its own user.
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      error = fmt::format("cannot open the lock file {}: {}", path_, errnoText(errno));
      return false;
    }
    // Bounded: a lock held for long (an offline edit stopped with Ctrl-Z, `flock ... vi`) must
    // not freeze the admin thread, and with it /healthz.
    const auto deadline = std::chrono::steady_clock::now() + kLockWait;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
        busy_ = errno == EWOULDBLOCK;
        error = busy_ ? fmt::format(
                            "the tenants file is being edited elsewhere ({} is locked); "
                            "try again",
                            path_)
                      : fmt::format("cannot lock {}: {}", path_, errnoText(errno));
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }
  bool busy() const { return busy_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool busy_ = false;
};

// The tenants of a directory as JSON objects in the file's format (canonical: lower-cased
// domains, canonical networks, keys in the file's order).
Json directoryToArray(const policy::TenantDirectory& directory) {
  return Json::parse(tenantsToJson(directory))["tenants"];
}

// Reads the tenants file as an array of canonical tenant objects. A missing file is an empty
// list (the first PUT creates it); an invalid one gives its errors.
bool readTenants(const std::string& path, Json& tenants, std::vector<std::string>& errors) {
  tenants = Json::array();
  if (path.empty()) {
    return true;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return true;
  }
  policy::TenantDirectory directory;
  std::vector<ConfigError> problems;
  if (!loadTenantsFile(path, directory, problems)) {
    for (const auto& p : problems) {
      errors.push_back(p.str());
    }
    return false;
  }
  tenants = directoryToArray(directory);
  return true;
}

std::optional<std::size_t> findTenant(const Json& tenants, const std::string& id) {
  const std::string wanted = policy::asciiLower(id);
  for (std::size_t i = 0; i < tenants.size(); ++i) {
    const Json& t = tenants[i];
    if (t.is_object() && t.contains("id") && t["id"].is_string() &&
        policy::asciiLower(t["id"].get<std::string>()) == wanted) {
      return i;
    }
  }
  return std::nullopt;
}

// The output form: each exception with its "index" first, so that "exception remove ID N" names
// one exception unambiguously.
Json withIndexes(const Json& tenant) {
  if (!tenant.is_object()) {
    return tenant;
  }
  Json out = tenant;
  if (out.contains("exceptions") && out["exceptions"].is_array()) {
    Json list = Json::array();
    std::size_t index = 0;
    for (const Json& e : tenant["exceptions"]) {
      Json item = {{"index", index++}};
      if (e.is_object()) {
        for (const auto& [key, value] : e.items()) {
          item[key] = value;
        }
      }
      list.push_back(std::move(item));
    }
    out["exceptions"] = std::move(list);
  }
  return out;
}

// The input form: "index" is output only, so a tenant read with GET can be PUT back as it is.
void stripIndexes(Json& tenant) {
  if (tenant.is_object() && tenant.contains("exceptions") && tenant["exceptions"].is_array()) {
    for (Json& e : tenant["exceptions"]) {
      if (e.is_object()) {
        e.erase("index");
      }
    }
  }
}

// What kind of change old -> new is, for the audit trail.
std::string inferAction(const Json& before, const Json& after) {
  if (before.is_null()) {
    return "create";
  }
  if (after.is_null()) {
    return "delete";
  }
  Json a = before;
  Json b = after;
  Json ea = a.contains("exceptions") ? a["exceptions"] : Json::array();
  Json eb = b.contains("exceptions") ? b["exceptions"] : Json::array();
  a.erase("exceptions");
  b.erase("exceptions");
  if (a != b) {
    return "set";
  }
  auto oneRemoved = [](const Json& longer, const Json& shorter) {
    if (longer.size() != shorter.size() + 1) {
      return false;
    }
    for (std::size_t skip = 0; skip < longer.size(); ++skip) {
      Json rest = longer;
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(skip));
      if (rest == shorter) {
        return true;
      }
    }
    return false;
  };
  if (oneRemoved(eb, ea)) {
    return "exception add";
  }
  if (oneRemoved(ea, eb)) {
    return "exception remove";
  }
  return "set";
}

bool syncDirectory(const std::string& dir, std::string& error) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    error = fmt::format("cannot fsync the directory {}: {}", dir, errnoText(errno));
    if (fd >= 0) {
      ::close(fd);
    }
    return false;
  }
  ::close(fd);
  return true;
}

// Same directory temp file, fsync, rename, fsync the directory: a crash leaves the old file or
// the new one, never a mix. The old file's mode (and, when permitted, owner) is kept.
bool writeAtomically(const std::string& path, const std::string& content, std::string& error) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot create a temporary file in {}: {}", dir.string(), errnoText(errno));
    return false;
  }
  tmp = name.data();
  auto fail = [&](const std::string& what) {
    error = fmt::format("{} {}: {}", what, tmp, errnoText(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  };
  struct stat st {};
  mode_t mode = 0644;
  if (::stat(path.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
    // Only root may give a file away; elsewhere the owner stays ours, which is right then too.
    if (::fchown(fd, st.st_uid, st.st_gid) != 0) {
      errno = 0;
    }
  }
  if (::fchmod(fd, mode) != 0) {
    return fail("cannot set the mode of");
  }
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail("cannot write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    return fail("cannot fsync");
  }
  if (::close(fd) != 0) {
    error = fmt::format("cannot close {}: {}", tmp, errnoText(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = fmt::format("cannot rename {} to {}: {}", tmp, path, errnoText(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  // The rename itself is durable only once the directory is.
  return syncDirectory(dir, error);
}

// One JSON line per change, appended in a single write and fsynced before the answer; a new
// file's directory is synced too, so that the file itself survives a power loss.
bool appendAudit(const std::string& path, const Json& entry, std::string& error) {
  if (path.empty()) {
    return true;
  }
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    // Created by root (an offline edit): hand it to the state directory's owner, the gateway's
    // user, which must be able to append to it later.
    struct stat dirStat {};
    if (fd >= 0 && ::geteuid() == 0 &&
        ::stat(parent.empty() ? "." : parent.c_str(), &dirStat) == 0 &&
        ::fchown(fd, dirStat.st_uid, dirStat.st_gid) != 0) {
      log::warning("cannot hand {} to the owner of its directory: {}", path, errnoText(errno));
    }
    if (fd < 0 && errno == EEXIST) {
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    } else if (fd >= 0 && !syncDirectory(parent.empty() ? "." : parent.string(), error)) {
      ::close(fd);
      return false;
    }
  }
  if (fd < 0) {
    error = fmt::format("cannot open the audit trail {}: {}", path, errnoText(errno));
    return false;
  }
  const std::string line = entry.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  ssize_t n = 0;
  do {
    n = ::write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  bool ok = n == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  if (!ok) {
    error = fmt::format(
        "cannot write the audit trail {}: {}", path,
        n >= 0 && n != static_cast<ssize_t>(line.size()) ? "short write" : errnoText(errno));
  }
  ::close(fd);
  return ok;
}

// Who asked, as the audit trail shows it: printable, bounded. Credentials never reach here (the
// server passes a description of the caller, not its token).
std::string cleanActor(const std::string& actor) {
  std::string out;
  for (char c : actor) {
    auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? '?' : c;
    if (out.size() >= kMaxActorLength) {
      break;
    }
  }
  return out.empty() ? "api" : out;
}

std::string nowText() {
  return isoUtcSeconds(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
}

std::vector<ConfigError>& problemsIgnored() {
  thread_local std::vector<ConfigError> ignored;
  ignored.clear();
  return ignored;
}

// Validates a document in which tenant `edited` changed. The validator reports a clash where it
// meets it the second time, so the edited tenant is checked last: "fabrikam.com already belongs
// to tenant "fabrikam"" is then said of the change, not of the tenant it collides with. The
// pointers are mapped back to the document's real order.
bool validate(const Json& tenants, std::size_t edited, std::vector<std::string>& errors) {
  const std::size_t n = tenants.size();
  if (n == 0 || edited >= n) {
    edited = n == 0 ? 0 : n - 1;
  }
  std::vector<std::size_t> realIndex;  // validation position -> position in the document
  Json reordered = Json::array();
  for (std::size_t i = 0; i < n; ++i) {
    if (i != edited) {
      realIndex.push_back(i);
      reordered.push_back(tenants[i]);
    }
  }
  if (n > 0) {
    realIndex.push_back(edited);
    reordered.push_back(tenants[edited]);
  }
  policy::TenantDirectory ignored;
  std::vector<ConfigError> problems;
  if (parseTenants(Json{{"tenants", reordered}}.dump(), ignored, problems)) {
    return true;
  }
  // Every "/tenants/N" in a message points into `reordered`: rewrite N to the real index.
  auto remap = [&](const std::string& text) {
    static constexpr std::string_view kPrefix = "/tenants/";
    std::string out;
    std::size_t last = 0;
    for (std::size_t at = text.find(kPrefix); at != std::string::npos;
         at = text.find(kPrefix, at + 1)) {
      const std::size_t digits = at + kPrefix.size();
      std::size_t end = digits;
      while (end < text.size() && text[end] >= '0' && text[end] <= '9') {
        ++end;
      }
      if (end == digits || end - digits > 9) {
        continue;  // not an index (or no index we could have made)
      }
      const std::size_t position = std::stoul(text.substr(digits, end - digits));
      out.append(text, last, at - last);
      out += "/tenants/" +
             std::to_string(position < realIndex.size() ? realIndex[position] : position);
      last = end;
    }
    return out + text.substr(last);
  };
  for (const auto& p : problems) {
    errors.push_back(remap(p.str()));
  }
  return false;
}

class FileChange : public TenantChange {
 public:
  FileChange(const TenantAdminContext& ctx, std::unique_ptr<TenantsLock> lock, Json tenants)
      : ctx_(ctx), lock_(std::move(lock)), tenants_(std::move(tenants)) {}
  const Json& tenants() const override { return tenants_; }
  bool commit(const policy::TenantDirectory& next, const Json& entry,
              std::string& error) override {
    // The audit line goes first: a change on disk always has its line, even after a crash
    // right after the rename. A write that fails afterwards gets a second line saying so.
    if (!appendAudit(ctx_.auditPath, entry, error)) {
      error = fmt::format("nothing was changed: {}", error);
      return false;
    }
    if (!writeAtomically(ctx_.tenantsPath, tenantsToJson(next), error)) {
      std::string ignored;
      Json failed = entry;
      failed["time"] = nowText();
      failed["action"] = entry["action"].get<std::string>() + " failed";
      failed["new"] = entry["old"];
      failed["error"] = error;
      appendAudit(ctx_.auditPath, failed, ignored);
      return false;
    }
    return true;
  }

 private:
  const TenantAdminContext& ctx_;
  std::unique_ptr<TenantsLock> lock_;
  Json tenants_;
};

// The tenants file and STATE_DIR/audit.jsonl.
class FileRepository : public TenantRepository {
 public:
  explicit FileRepository(const TenantAdminContext& ctx) : ctx_(ctx) {}
  bool read(Json& tenants, int& status, std::string& error,
            std::vector<std::string>& errors) override {
    if (readTenants(ctx_.tenantsPath, tenants, errors)) {
      return true;
    }
    status = 409;
    error = fmt::format("the tenants file {} is invalid", ctx_.tenantsPath);
    return false;
  }
  std::unique_ptr<TenantChange> begin(int& status, std::string& error,
                                      std::vector<std::string>& errors) override {
    if (ctx_.tenantsPath.empty()) {
      status = 409;
      error = "no tenants file is configured (\"tenants\" in the configuration)";
      return nullptr;
    }
    auto lock = std::make_unique<TenantsLock>(ctx_.tenantsPath);
    if (!lock->acquire(error)) {
      status = lock->busy() ? 503 : 500;
      return nullptr;
    }
    // Re-read inside the lock: whatever is on disk now (a hand edit, the other process's
    // change) is what this change builds on.
    Json tenants;
    if (!readTenants(ctx_.tenantsPath, tenants, errors)) {
      status = 409;
      error = fmt::format("the tenants file {} is invalid; fix it first", ctx_.tenantsPath);
      return nullptr;
    }
    return std::make_unique<FileChange>(ctx_, std::move(lock), std::move(tenants));
  }
  bool audit(const std::string& tenant, int limit, std::vector<Json>& entries,
             std::string&) override {
    std::ifstream in(ctx_.auditPath);
    std::vector<Json> matching;
    std::string line;
    while (std::getline(in, line)) {
      Json entry = Json::parse(line, nullptr, false);
      if (entry.is_discarded() || !entry.is_object()) {
        continue;  // a torn last line after a crash is not a reason to hide the rest
      }
      if (!tenant.empty() &&
          policy::asciiLower(entry.value("tenant", std::string())) != tenant) {
        continue;
      }
      matching.push_back(std::move(entry));
    }
    for (auto it = matching.rbegin();
         it != matching.rend() && entries.size() < static_cast<std::size_t>(limit); ++it) {
      entries.push_back(std::move(*it));
    }
    return true;
  }

 private:
  const TenantAdminContext& ctx_;
};

std::shared_ptr<TenantRepository> repositoryOf(const TenantAdminContext& ctx) {
  if (ctx.repository) {
    return ctx.repository;
  }
  return std::make_shared<FileRepository>(ctx);
}

bool readAll(const TenantAdminContext& ctx, Json& tenants, AdminResponse& failed) {
  int status = 500;
  std::string error;
  std::vector<std::string> errors;
  if (repositoryOf(ctx)->read(tenants, status, error, errors)) {
    return true;
  }
  failed = failure(status, error, errors);
  return false;
}

AdminResponse listTenants(const TenantAdminContext& ctx) {
  Json tenants;
  AdminResponse failed;
  if (!readAll(ctx, tenants, failed)) {
    return failed;
  }
  Json list = Json::array();
  for (const Json& t : tenants) {
    list.push_back(withIndexes(t));
  }
  return respond(200, Json{{"tenants", std::move(list)}});
}

AdminResponse showTenant(const TenantAdminContext& ctx, const std::string& id) {
  Json tenants;
  AdminResponse failed;
  if (!readAll(ctx, tenants, failed)) {
    return failed;
  }
  auto index = findTenant(tenants, id);
  if (!index) {
    return failure(404, fmt::format("no tenant \"{}\"", id));
  }
  const Json& t = tenants[*index];
  return respond(200, Json{{"tenant", withIndexes(t)}, {"revision", tenantRevision(t)}});
}

AdminResponse putTenant(const AdminRequest& req, const TenantAdminContext& ctx,
                        const std::string& id) {
  Json body;
  try {
    body = Json::parse(req.body);
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    auto bracket = what.find("] ");
    return failure(
        400, "invalid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
  }
  if (!body.is_object()) {
    return failure(400, "the body must be a tenant object");
  }
  if (body.contains("id") && !(body["id"].is_string() && body["id"].get<std::string>() == id)) {
    std::string message = fmt::format("/id: {} does not match the tenant of the path (\"{}\")",
                                      body["id"].dump(), id);
    return failure(422, "the tenant is invalid", {message});
  }
  stripIndexes(body);
  if (!body.contains("id")) {
    Json withId = {{"id", id}};
    for (const auto& [key, value] : body.items()) {
      withId[key] = value;
    }
    body = std::move(withId);
  }
  TenantMutation replace = [&body](Json& tenant) {
    tenant = body;
    return TenantMutationError{};
  };
  return editTenant(ctx, id, req.actor, replace, req.param("revision"));
}

AdminResponse deleteTenant(const AdminRequest& req, const TenantAdminContext& ctx,
                           const std::string& id) {
  TenantMutation remove = [&id](Json& tenant) {
    if (tenant.is_null()) {
      return TenantMutationError{404, fmt::format("no tenant \"{}\"", id)};
    }
    tenant = nullptr;
    return TenantMutationError{};
  };
  return editTenant(ctx, id, req.actor, remove, req.param("revision"));
}

AdminResponse auditTrail(const AdminRequest& req, const TenantAdminContext& ctx) {
  int limit = kDefaultAuditLimit;
  if (req.has("limit")) {
    const std::string text = req.param("limit");
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || value < 1 || value > kMaxAuditLimit) {
      return failure(400, fmt::format("limit must be 1..{}", kMaxAuditLimit));
    }
    limit = static_cast<int>(value);
  }
  const std::string tenant = policy::asciiLower(req.param("tenant"));
  std::vector<Json> found;
  std::string error;
  if (!repositoryOf(ctx)->audit(tenant, limit, found, error)) {
    return failure(503, error);
  }
  Json entries = Json::array();
  for (Json& entry : found) {
    entries.push_back(std::move(entry));
  }
  return respond(200, Json{{"audit", std::move(entries)}});
}

}  // namespace

std::string tenantRevision(const Json& tenant) {
  if (tenant.is_null()) {
    return "none";
  }
  // FNV-1a over the canonical form: stable across processes and builds.
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : tenant.dump(-1, ' ', false, Json::error_handler_t::replace)) {
    hash = (hash ^ c) * 1099511628211ull;
  }
  return fmt::format("{:016x}", hash);
}

std::string offlineActor() {
  std::string user;
  if (const passwd* pw = ::getpwuid(::geteuid())) {
    user = pw->pw_name;
  } else if (const char* env = std::getenv("USER")) {
    user = env;
  } else {
    user = std::to_string(::geteuid());
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    std::strcpy(host, "localhost");
  }
  return fmt::format("offline {}@{}", user, host);
}

AdminResponse editTenant(const TenantAdminContext& ctx, const std::string& id,
                         const std::string& actor, const TenantMutation& mutate,
                         const std::string& expectedRevision) {
  const auto repository = repositoryOf(ctx);
  int status = 500;
  std::string error;
  std::vector<std::string> errors;
  std::unique_ptr<TenantChange> change = repository->begin(status, error, errors);
  if (!change) {
    return failure(status, error, errors);
  }
  const Json& tenants = change->tenants();
  auto index = findTenant(tenants, id);
  const Json before = index ? tenants[*index] : Json();
  if (!expectedRevision.empty() && tenantRevision(before) != expectedRevision) {
    Json body = {
        {"error", fmt::format("tenant \"{}\" changed since it was read; read it again", id)},
        {"current_revision", tenantRevision(before)}};
    return respond(409, body);
  }
  Json tenant = before;
  TenantMutationError refused = mutate(tenant);
  if (refused.status != 0) {
    return failure(refused.status, refused.message);
  }
  if (!tenant.is_null() && !tenant.is_object()) {
    return failure(400, "a tenant must be a JSON object");
  }
  stripIndexes(tenant);
  Json next = tenants;
  if (index) {
    if (tenant.is_null()) {
      next.erase(next.begin() + static_cast<std::ptrdiff_t>(*index));
    } else {
      next[*index] = tenant;
    }
  } else if (!tenant.is_null()) {
    next.push_back(tenant);
  } else {
    return failure(404, fmt::format("no tenant \"{}\"", id));
  }

  // Validate the whole document, so that every rule of the file holds (domain clashes with
  // other tenants included), with the pointers a hand editor would see.
  policy::TenantDirectory directory;
  if (!validate(next, index && !tenant.is_null() ? *index : next.size() - 1, errors) ||
      !parseTenants(Json{{"tenants", next}}.dump(), directory, problemsIgnored())) {
    return failure(422, fmt::format("the change to tenant \"{}\" is invalid", id), errors);
  }
  const Json canonical = directoryToArray(directory);
  Json after;
  std::string tenantId = before.is_null() ? id : before["id"].get<std::string>();
  if (!tenant.is_null()) {
    tenantId = tenant["id"].get<std::string>();
    after = canonical[*findTenant(canonical, tenantId)];
  }
  if (after == before) {
    return respond(200, Json{{"tenant", withIndexes(after)},
                             {"revision", tenantRevision(after)},
                             {"audit", nullptr},
                             {"unchanged", true}});
  }
  Json entry = {{"time", nowText()},  {"actor", cleanActor(actor)},
                {"tenant", tenantId}, {"action", inferAction(before, after)},
                {"old", before},      {"new", after}};
  if (!change->commit(directory, entry, error)) {
    log::error("tenant {}: {}", tenantId, error);
    return failure(500, error);
  }
  if (ctx.apply) {
    ctx.apply(directory);
  }
  log::info("tenant {}: {} by {}", tenantId, entry["action"].get<std::string>(),
            entry["actor"].get<std::string>());
  if (after.is_null()) {
    return respond(200, Json{{"deleted", tenantId}, {"audit", entry}});
  }
  return respond(
      before.is_null() ? 201 : 200,
      Json{{"tenant", withIndexes(after)}, {"revision", tenantRevision(after)}, {"audit", entry}});
}

AdminResponse handleTenantRequest(const AdminRequest& req, const TenantAdminContext& ctx) {
  const std::string base = kTenantsPath;
  if (req.path == base || req.path == base + "/") {
    if (req.method != "GET") {
      return methodNotAllowed("GET");
    }
    return listTenants(ctx);
  }
  if (req.path.rfind(base + "/", 0) == 0) {
    const std::string id = req.path.substr(base.size() + 1);
    if (id.find('/') != std::string::npos) {
      return failure(404, "not found");
    }
    if (req.method == "GET") {
      return showTenant(ctx, id);
    }
    if (req.method == "PUT") {
      return putTenant(req, ctx, id);
    }
    if (req.method == "DELETE") {
      return deleteTenant(req, ctx, id);
    }
    return methodNotAllowed("GET, PUT, DELETE");
  }
  if (req.path == kAuditPath) {
    if (req.method != "GET") {
      return methodNotAllowed("GET");
    }
    return auditTrail(req, ctx);
  }
  return failure(404, "not found");
}

}  // namespace smtpgate
