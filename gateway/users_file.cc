#include "gateway/users_file.h"

#include "gateway/json_validator.h"
#include "policy/ascii.h"

#include <crypt.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

namespace smtpgate {

namespace {

// Hashed for unknown users when the file is empty (then every answer is "no" anyway).
// SHA-512 crypt of a random throwaway password.
const char* const kDummyHash =
    "$6$/Q7KfwHwW62m0Vi9$03xOAN8jwMoJYiuaeNEne.BDqrQj1ufPeMIUPNDc29YV1k0BAXNzv/"
    "BAEbWpDCqrTOIl1cre8QYMwR83BoAjG/";

const char* const kHashPrefixes[] = {"$y$", "$gy$", "$6$", "$5$", "$2b$"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool isAddress(std::string_view user) {
  auto at = user.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == user.size()) {
    return false;
  }
  for (char c : user) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return false;
    }
  }
  return true;
}

// The characters crypt(3) writes ("=" appears in "$6$rounds=N$") and at least a salt and a
// hash field after the algorithm prefix.
bool looksLikeCryptHash(std::string_view hash) {
  std::size_t dollars = 0;
  for (char c : hash) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/' || c == '$' || c == '=';
    if (!ok) {
      return false;
    }
    dollars += c == '$' ? 1 : 0;
  }
  return dollars >= 3 && hash.back() != '$';
}

// Compares without an early exit, so the time taken does not depend on where they differ.
bool constantTimeEquals(std::string_view a, std::string_view b) {
  std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// crypt_r with its own scratch space (about 32 KiB: on the heap, not the thread pool's stack)
// so that concurrent calls never share state.
bool cryptMatches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  bool ok = out != nullptr && out[0] != '*' && constantTimeEquals(out, hash);
  explicit_bzero(data.get(), sizeof(crypt_data));
  return ok;
}

bool randomBytes(unsigned char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = getrandom(out + done, size - done, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

bool UsersFile::load(const std::string& path, std::vector<std::string>& errors) {
  std::string text, error;
  if (!json_schema::readFile(path, text, error)) {
    errors.push_back(std::move(error));
    return false;
  }
  return parse(text, path, errors);
}

bool UsersFile::parse(const std::string& text, const std::string& name,
                      std::vector<std::string>& errors) {
  std::map<std::string, std::string> hashes;
  std::map<std::string, std::size_t> firstLine;
  std::size_t errorsBefore = errors.size();
  auto fail = [&](std::size_t line, const std::string& message) {
    errors.push_back(fmt::format("{} line {}: {}", name, line, message));
  };
  std::size_t lineNumber = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string_view line = trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    ++lineNumber;
    if (line.empty() || line.front() == '#') {
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      fail(lineNumber, "expected user@domain:HASH");
      continue;
    }
    std::string_view rawUser = trim(line.substr(0, colon));
    std::string_view hash = trim(line.substr(colon + 1));
    if (!isAddress(rawUser)) {
      fail(lineNumber, fmt::format("\"{}\" is not user@domain", rawUser));
      continue;
    }
    std::string user = policy::asciiLower(rawUser);
    bool known = false;
    for (const char* prefix : kHashPrefixes) {
      known = known || hash.substr(0, std::strlen(prefix)) == prefix;
    }
    if (!known) {
      fail(lineNumber, fmt::format("unsupported hash for {} (crypt(3) $y$, $gy$, $6$, $5$ or "
                                   "$2b$ expected)",
                                   user));
      continue;
    }
    if (!looksLikeCryptHash(hash)) {
      fail(lineNumber, fmt::format("malformed hash for {}", user));
      continue;
    }
    auto [it, fresh] = firstLine.emplace(user, lineNumber);
    if (!fresh) {
      fail(lineNumber, fmt::format("duplicate user {} (first on line {})", user, it->second));
      continue;
    }
    hashes.emplace(user, std::string(hash));
  }
  if (errors.size() != errorsBefore) {
    return false;
  }
  hashes_ = std::move(hashes);
  return true;
}

bool UsersFile::verify(const std::string& user, const std::string& password) const {
  auto it = hashes_.find(policy::asciiLower(user));
  bool known = it != hashes_.end();
  // Unknown users are hashed against a real entry of the file, so they cost the same time as
  // known ones with the same algorithm; the result is thrown away.
  std::string hash = known ? it->second : hashes_.empty() ? kDummyHash : hashes_.begin()->second;
  bool matches = cryptMatches(password, hash);
  // crypt(3) stops at a NUL: "secret\0anything" must not pass as "secret".
  bool clean = password.find('\0') == std::string::npos;
  return known && matches && clean;
}

std::string UsersFile::hashPassword(const std::string& password) {
  unsigned char salt[16];
  if (!randomBytes(salt, sizeof salt)) {
    return "";
  }
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  const char* prefix = crypt_gensalt_rn("$y$", 0, reinterpret_cast<const char*>(salt), sizeof salt,
                                        setting, sizeof setting);
  if (prefix == nullptr) {
    prefix = crypt_gensalt_rn("$6$", 0, reinterpret_cast<const char*>(salt), sizeof salt, setting,
                              sizeof setting);
  }
  if (prefix == nullptr) {
    return "";
  }
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(password.c_str(), setting, data.get());
  std::string hash = out != nullptr && out[0] != '*' ? out : "";
  explicit_bzero(data.get(), sizeof(crypt_data));
  return hash;
}

}  // namespace smtpgate
