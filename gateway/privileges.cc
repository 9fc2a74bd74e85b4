#include "gateway/privileges.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace smtpgate {

std::string dropPrivileges(const std::string& user, const std::vector<std::string>& ownedPaths) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  int rc = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    return fmt::format("user \"{}\": {}", user, rc != 0 ? std::strerror(rc) : "no such user");
  }
  const uid_t uid = entry.pw_uid;
  const gid_t gid = entry.pw_gid;
  if (::geteuid() != 0) {
    if (::geteuid() == uid) {
      return "";  // started as the user already (systemd User=, a container)
    }
    return fmt::format("cannot switch to user \"{}\": not running as root", user);
  }
  if (uid == 0) {
    return fmt::format("user \"{}\" is root: name an unprivileged user", user);
  }
  for (const auto& path : ownedPaths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) {
      continue;  // missing, or a symlink that must not redirect the chown
    }
    if ((st.st_uid != uid || st.st_gid != gid) && ::chown(path.c_str(), uid, gid) != 0) {
      return fmt::format("cannot hand {} to user \"{}\": {}", path, user, std::strerror(errno));
    }
  }
  // Groups first, then the group, then the user: once the uid is gone nothing else may change.
  if (::initgroups(entry.pw_name, gid) != 0) {
    return fmt::format("initgroups for \"{}\": {}", user, std::strerror(errno));
  }
  if (::setgid(gid) != 0) {
    return fmt::format("setgid({}): {}", gid, std::strerror(errno));
  }
  if (::setuid(uid) != 0) {
    return fmt::format("setuid({}): {}", uid, std::strerror(errno));
  }
  if (::setuid(0) == 0 || ::geteuid() == 0) {
    return "the switch away from root did not hold";
  }
  // Keys read as root stay out of core dumps of the unprivileged process.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return "";
}

}  // namespace smtpgate
