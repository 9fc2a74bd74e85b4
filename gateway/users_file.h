#pragma once

#include <map>
#include <string>
#include <vector>

namespace smtpgate {

// The users file of the spool backend: one "user@domain:CRYPT-HASH" per line (crypt(3),
// yescrypt "$y$" or SHA-512 "$6$"); blank lines and lines starting with '#' are ignored.
class UsersFile {
 public:
  // Returns false and fills `errors` ("users.txt line 3: ...") on a malformed file.
  bool load(const std::string& path, std::vector<std::string>& errors);
  bool parse(const std::string& text, const std::string& name, std::vector<std::string>& errors);
  // Constant-time-ish verification through crypt_r(3); unknown users still cost one hash so
  // that timing does not reveal which users exist. Thread-safe (call it off the event loop).
  bool verify(const std::string& user, const std::string& password) const;
  std::size_t size() const { return hashes_.size(); }

  // A new crypt(3) hash of `password` with a random salt ("$y$" when libcrypt supports it,
  // else "$6$"), for writing demo users files.
  static std::string hashPassword(const std::string& password);

 private:
  std::map<std::string, std::string> hashes_;  // lower-case user -> hash
};

}  // namespace smtpgate
