#pragma once

// Helpers shared by the configuration tests.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/config.h"

namespace smtpgate::testing {

inline std::vector<std::string> errorsOf(const std::string& json, const std::string& baseDir = "/etc/sg") {
  std::vector<ConfigError> errors;
  parseConfig(json, baseDir, errors);
  std::vector<std::string> out;
  for (const auto& e : errors) {
    out.push_back(e.str());
  }
  return out;
}

inline std::vector<std::string> one(const std::string& message) { return {message}; }

// Most error cases need a valid certificate list alongside listeners; this wraps one listener.
inline std::string withListener(const std::string& listenerBody) {
  return R"({"certificates": [{"cert": "c.pem", "key": "c.key"}], "listeners": [)" + listenerBody +
         "]}";
}

struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/smtpgate-config-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path + "/" + name, std::ios::binary) << text;
  }
};

}  // namespace smtpgate::testing
