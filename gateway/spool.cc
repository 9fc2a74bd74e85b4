#include "gateway/spool.h"

#include "gateway/time_format.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace smtpgate {

namespace {

// Crockford's base-32: upper-case, no I/L/O/U, and in ASCII order so that ids sort like the
// numbers they encode.
const char kBase32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t kTimeChars = 11;   // 55 bits of microseconds: good until the year 3111
constexpr std::size_t kRandomChars = 8;  // 40 random bits: distinct within one microsecond

// strerror(3) may share a buffer between threads; the GNU strerror_r does not.
std::string errnoText(int error) {
  char buffer[256];
  return ::strerror_r(error, buffer, sizeof buffer);
}

uint64_t randomWord() {
  uint64_t value = 0;
  auto* out = reinterpret_cast<unsigned char*>(&value);
  std::size_t done = 0;
  while (done < sizeof value) {
    ssize_t n = getrandom(out + done, sizeof value - done, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      // getrandom cannot fail once the pool is initialised; the clock still keeps ids apart.
      return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    done += static_cast<std::size_t>(n);
  }
  return value;
}

uint64_t nowMicros() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

// Ids become file names: only our own alphabet may appear in them.
bool isValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    if (std::strchr(kBase32, c) == nullptr || c == '\0') {
      return false;
    }
  }
  return true;
}

// mkdir -p with mode 0700 for every directory it creates.
std::string ensureDirectory(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) {
    return "";
  }
  int error = errno;
  if (error == ENOENT && dir.has_parent_path() && dir.parent_path() != dir) {
    std::string parentError = ensureDirectory(dir.parent_path());
    if (!parentError.empty()) {
      return parentError;
    }
    if (::mkdir(dir.c_str(), 0700) == 0) {
      return "";
    }
    error = errno;
  }
  if (error == EEXIST) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return "";
    }
    return fmt::format("{} exists and is not a directory", dir.string());
  }
  return fmt::format("cannot create directory {}: {}", dir.string(), errnoText(error));
}

// Writes a new file (never an existing one) and fsyncs it. EEXIST is reported through
// `exists` so that the caller can pick another id.
bool writeNewFile(const std::string& path, const std::string& data, std::string& error,
                  bool& exists) {
  exists = false;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    exists = errno == EEXIST;
    error = fmt::format("cannot create {}: {}", path, errnoText(errno));
    return false;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = fmt::format("cannot write {}: {}", path, errnoText(errno));
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    error = fmt::format("cannot fsync {}: {}", path, errnoText(errno));
    ::close(fd);
    return false;
  }
  if (::close(fd) != 0) {
    error = fmt::format("cannot close {}: {}", path, errnoText(errno));
    return false;
  }
  return true;
}

// rename(2) that never replaces an existing file: a committed message is never overwritten,
// even by a caller-chosen id that repeats. link(2)+unlink(2) where the file system lacks
// RENAME_NOREPLACE.
int renameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return 0;
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return -1;
  }
  if (::link(from.c_str(), to.c_str()) != 0) {
    return -1;
  }
  ::unlink(from.c_str());
  return 0;
}

bool syncDirectory(const std::string& dir, std::string& error) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot open {}: {}", dir, errnoText(errno));
    return false;
  }
  bool ok = ::fsync(fd) == 0;
  if (!ok) {
    error = fmt::format("cannot fsync {}: {}", dir, errnoText(errno));
  }
  ::close(fd);
  return ok;
}

nlohmann::ordered_json orNull(const std::string& value) {
  return value.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(value);
}

std::string envelopeJson(const std::string& id, uint64_t receivedMicros,
                         const smtp::Message& message, std::size_t size,
                         const SessionFacts& facts) {
  nlohmann::ordered_json tls = nullptr;  // plaintext session
  if (!facts.tlsVersion.empty()) {
    tls = {{"version", facts.tlsVersion},
           {"cipher", facts.tlsCipher},
           {"sni", orNull(facts.sni)},
           {"max_offered", orNull(facts.tlsMaxOffered)}};
  }
  nlohmann::ordered_json session = {
      {"session_id", facts.sessionId},   {"listener", facts.listener},
      {"endpoint", facts.endpoint},      {"client_ip", facts.clientIp},
      {"client_port", facts.clientPort}, {"tls", tls},
      {"tenant", orNull(facts.tenant)},  {"rule", orNull(facts.rule)}};
  nlohmann::ordered_json doc = {{"id", id},
                                {"received_at", isoUtcSeconds(static_cast<int64_t>(receivedMicros / 1000))},
                                {"mail_from", message.envelope.mailFrom},
                                {"mail_params", message.envelope.mailParams},
                                {"rcpt_to", message.envelope.rcptTo},
                                {"helo", message.helo},
                                {"esmtp", message.esmtp},
                                {"auth_user", orNull(message.authUser)},
                                {"size", size},
                                {"session", session}};
  // Envelope strings come from the network: invalid UTF-8 is replaced rather than thrown on.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string Spool::makeId(uint64_t unixMicros, uint64_t random) {
  std::string id(kTimeChars + kRandomChars, '0');
  for (std::size_t i = 0; i < kTimeChars; ++i) {
    id[kTimeChars - 1 - i] = kBase32[unixMicros & 31];
    unixMicros >>= 5;
  }
  for (std::size_t i = 0; i < kRandomChars; ++i) {
    id[kTimeChars + i] = kBase32[random & 31];
    random >>= 5;
  }
  return id;
}

std::string Spool::prepare() const {
  namespace fs = std::filesystem;
  for (const fs::path& dir : {fs::path(dir_), fs::path(dir_) / "tmp", fs::path(dir_) / "new"}) {
    std::string error = ensureDirectory(dir);
    if (!error.empty()) {
      return error;
    }
  }
  // Creating and removing a file proves the spool is writable now (read-only mounts, full
  // disks and permissions all show up here rather than at the first message).
  std::string probe = dir_ + "/tmp/.probe-" + makeId(nowMicros(), randomWord());
  std::string error;
  bool exists = false;
  if (!writeNewFile(probe, "", error, exists)) {
    return error;
  }
  ::unlink(probe.c_str());
  return "";
}

bool Spool::store(const smtp::Message& message, const std::string& content,
                  const SessionFacts& facts, std::string& id, std::string& error) const {
  const bool chosenByCaller = !id.empty();
  if (chosenByCaller && !isValidId(id)) {
    error = "invalid queue id";
    return false;
  }
  const std::string tmpDir = dir_ + "/tmp/";
  const std::string newDir = dir_ + "/new/";
  uint64_t received = nowMicros();
  std::string tmpEml;
  std::string tmpJson;
  // A generated id that already exists (practically impossible) gets a fresh random part.
  for (int attempt = 0;; ++attempt) {
    if (!chosenByCaller) {
      id = makeId(received, randomWord());
    }
    tmpEml = tmpDir + id + ".eml";
    bool exists = false;
    if (writeNewFile(tmpEml, content, error, exists)) {
      break;
    }
    if (exists && !chosenByCaller && attempt < 3) {
      continue;
    }
    if (!exists) {
      ::unlink(tmpEml.c_str());  // a partial write
    }
    return false;
  }
  tmpJson = tmpDir + id + ".json";
  const std::string newEml = newDir + id + ".eml";
  const std::string newJson = newDir + id + ".json";
  bool exists = false;
  std::string json = envelopeJson(id, received, message, content.size(), facts);
  if (!writeNewFile(tmpJson, json, error, exists)) {
    if (!exists) {
      ::unlink(tmpJson.c_str());
    }
    ::unlink(tmpEml.c_str());
    return false;
  }
  // The JSON goes first: a reader that sees ID.eml in new/ (the commit point) finds its
  // envelope already there.
  if (renameNoReplace(tmpJson, newJson) != 0) {
    error = fmt::format("cannot rename {} to {}: {}", tmpJson, newJson, errnoText(errno));
    ::unlink(tmpJson.c_str());
    ::unlink(tmpEml.c_str());
    return false;
  }
  if (renameNoReplace(tmpEml, newEml) != 0) {
    error = fmt::format("cannot rename {} to {}: {}", tmpEml, newEml, errnoText(errno));
    ::unlink(newJson.c_str());
    ::unlink(tmpEml.c_str());
    return false;
  }
  // Until new/ is on disk the renames may be lost in a crash: only then is the 250 honest.
  if (!syncDirectory(newDir, error)) {
    ::unlink(newEml.c_str());
    ::unlink(newJson.c_str());
    return false;
  }
  return true;
}

}  // namespace smtpgate
