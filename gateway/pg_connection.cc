#include "gateway/pg_connection.h"

#include <dlfcn.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include <fmt/format.h>

namespace smtpgate {
namespace {

// libpq is linked against the system OpenSSL, smtpgate against BoringSSL, and the two must
// never meet in one symbol scope (ARCHITECTURE.md): BoringSSL's unversioned SSL_* symbols would
// satisfy libpq's OpenSSL 3 references. So libpq is not linked but loaded at first use with
// RTLD_DEEPBIND, which makes it and the OpenSSL it brings resolve their symbols among
// themselves first. Only the functions below are called, through this table.
struct Libpq {
  decltype(&::PQconnectdb) connectdb = nullptr;
  decltype(&::PQstatus) status = nullptr;
  decltype(&::PQfinish) finish = nullptr;
  decltype(&::PQerrorMessage) errorMessage = nullptr;
  decltype(&::PQsetClientEncoding) setClientEncoding = nullptr;
  decltype(&::PQexecParams) execParams = nullptr;
  decltype(&::PQexec) exec = nullptr;
  decltype(&::PQresultStatus) resultStatus = nullptr;
  decltype(&::PQresultErrorField) resultErrorField = nullptr;
  decltype(&::PQresultErrorMessage) resultErrorMessage = nullptr;
  decltype(&::PQclear) clear = nullptr;
  decltype(&::PQntuples) ntuples = nullptr;
  decltype(&::PQgetisnull) getisnull = nullptr;
  decltype(&::PQgetvalue) getvalue = nullptr;
  decltype(&::PQgetlength) getlength = nullptr;
  decltype(&::PQsocket) socket = nullptr;
  decltype(&::PQconsumeInput) consumeInput = nullptr;
  decltype(&::PQnotifies) notifies = nullptr;
  decltype(&::PQfreemem) freemem = nullptr;
  std::string error;  // why it could not be loaded
};

// The sanitizer runtimes refuse RTLD_DEEPBIND (their interceptors must see every call), so the
// sanitizer builds load libpq without it; they run the test rigs, which use neither TLS nor
// password hashing toward PostgreSQL and so never reach libpq's OpenSSL.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
#else
constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif

template <typename T>
bool resolve(void* handle, const char* name, T& out, std::string& error) {
  out = reinterpret_cast<T>(::dlsym(handle, name));
  if (out == nullptr && error.empty()) {
    error = fmt::format("{} lacks {}", SMTPGATE_LIBPQ_SONAME, name);
  }
  return out != nullptr;
}

const Libpq& libpq() {
  static Libpq pq;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = ::dlopen(SMTPGATE_LIBPQ_SONAME, kDlopenFlags);
    if (h == nullptr) {
      const char* why = ::dlerror();
      pq.error = fmt::format("cannot load {} (Debian package libpq5): {}", SMTPGATE_LIBPQ_SONAME,
                             why != nullptr ? why : "unknown error");
      return;
    }
    std::string& e = pq.error;
    bool ok = resolve(h, "PQconnectdb", pq.connectdb, e) & resolve(h, "PQstatus", pq.status, e) &
              resolve(h, "PQfinish", pq.finish, e) &
              resolve(h, "PQerrorMessage", pq.errorMessage, e) &
              resolve(h, "PQsetClientEncoding", pq.setClientEncoding, e) &
              resolve(h, "PQexecParams", pq.execParams, e) & resolve(h, "PQexec", pq.exec, e) &
              resolve(h, "PQresultStatus", pq.resultStatus, e) &
              resolve(h, "PQresultErrorField", pq.resultErrorField, e) &
              resolve(h, "PQresultErrorMessage", pq.resultErrorMessage, e) &
              resolve(h, "PQclear", pq.clear, e) & resolve(h, "PQntuples", pq.ntuples, e) &
              resolve(h, "PQgetisnull", pq.getisnull, e) &
              resolve(h, "PQgetvalue", pq.getvalue, e) &
              resolve(h, "PQgetlength", pq.getlength, e) & resolve(h, "PQsocket", pq.socket, e) &
              resolve(h, "PQconsumeInput", pq.consumeInput, e) &
              resolve(h, "PQnotifies", pq.notifies, e) & resolve(h, "PQfreemem", pq.freemem, e);
    if (!ok) {
      pq.connectdb = nullptr;  // unusable: connect() reports pq.error
    }
  });
  return pq;
}

}  // namespace

PgParams& PgParams::text(std::string_view value) {
  values_.emplace_back(std::string(value));
  return *this;
}

PgParams& PgParams::integer(int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

PgParams& PgParams::null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

PgResult::PgResult(pg_result* result) : result_(result) {}

PgResult::~PgResult() {
  if (result_ != nullptr) {
    libpq().clear(result_);
  }
}

PgResult::PgResult(PgResult&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) {
      libpq().clear(result_);
    }
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}

int PgResult::rows() const { return result_ != nullptr ? libpq().ntuples(result_) : 0; }

bool PgResult::isNull(int row, int column) const {
  return result_ == nullptr || libpq().getisnull(result_, row, column) != 0;
}

std::string PgResult::text(int row, int column) const {
  if (isNull(row, column)) {
    return {};
  }
  return std::string(libpq().getvalue(result_, row, column),
                     static_cast<std::size_t>(libpq().getlength(result_, row, column)));
}

int64_t PgResult::integer(int row, int column) const {
  if (isNull(row, column)) {
    return 0;
  }
  return std::strtoll(libpq().getvalue(result_, row, column), nullptr, 10);
}

namespace {

std::string trimmedError(pg_conn* conn) {
  std::string message = conn != nullptr ? libpq().errorMessage(conn) : "out of memory";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message;
}

}  // namespace

std::unique_ptr<PgConnection> PgConnection::connect(const std::string& conninfo,
                                                    std::string& error) {
  if (libpq().connectdb == nullptr) {
    error = fmt::format("cannot connect to PostgreSQL: {}", libpq().error);
    return nullptr;
  }
  pg_conn* conn = libpq().connectdb(conninfo.c_str());
  if (conn == nullptr || libpq().status(conn) != CONNECTION_OK) {
    error = fmt::format("cannot connect to PostgreSQL: {}", trimmedError(conn));
    if (conn != nullptr) {
      libpq().finish(conn);
    }
    return nullptr;
  }
  if (libpq().setClientEncoding(conn, "UTF8") != 0) {
    error = fmt::format("PostgreSQL: cannot use the UTF8 client encoding: {}", trimmedError(conn));
    libpq().finish(conn);
    return nullptr;
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { libpq().finish(conn_); }

bool PgConnection::exec(const std::string& sql, const PgParams& params, PgResult* out,
                        std::string& error) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& v : params.values()) {
    values.push_back(v ? v->c_str() : nullptr);
  }
  // Text parameters are NUL-terminated for libpq: pgSafeText keeps NULs out of them.
  PgResult result(libpq().execParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  return finish(std::move(result), out, error);
}

bool PgConnection::execScript(const std::string& sql, std::string& error) {
  return finish(PgResult(libpq().exec(conn_, sql.c_str())), nullptr, error);
}

bool PgConnection::finish(PgResult result, PgResult* out, std::string& error) {
  const ExecStatusType status = libpq().resultStatus(result.raw());
  sqlState_.clear();
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = result.raw() != nullptr ? libpq().resultErrorField(result.raw(), PG_DIAG_SQLSTATE)
                                                : nullptr;
    sqlState_ = state != nullptr ? state : "";
    std::string message = result.raw() != nullptr ? libpq().resultErrorMessage(result.raw()) : "";
    if (message.empty()) {
      message = trimmedError(conn_);
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    error = fmt::format("PostgreSQL: {}", message);
    return false;
  }
  if (out != nullptr) {
    *out = std::move(result);
  }
  return true;
}

bool PgConnection::healthy() const { return libpq().status(conn_) == CONNECTION_OK; }

int PgConnection::socket() const { return libpq().socket(conn_); }

bool PgConnection::takeNotifications(std::vector<std::pair<std::string, std::string>>& out) {
  if (libpq().consumeInput(conn_) == 0) {
    return false;
  }
  while (PGnotify* n = libpq().notifies(conn_)) {
    out.emplace_back(n->relname != nullptr ? n->relname : "", n->extra != nullptr ? n->extra : "");
    libpq().freemem(n);
  }
  return healthy();
}

std::string pgSafeText(std::string_view in) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3
                                       : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && i + length <= in.size() && c != 0 && !(c >= 0xC0 && c <= 0xC1) &&
                 c <= 0xF4;
    for (std::size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    }
    if (valid && length >= 3) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      // No overlong forms, no UTF-16 surrogates, nothing above U+10FFFF.
      valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0) &&
              !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (valid) {
      out.append(in.substr(i, length));
      i += length;
    } else {
      out += kReplacement;
      i += 1;
    }
  }
  return out;
}

std::string numberedPlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') {
      quoted = !quoted;  // '' inside a literal toggles twice: still inside
    }
    if (c == '?' && !quoted) {
      out += '$';
      out += std::to_string(++next);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace smtpgate
