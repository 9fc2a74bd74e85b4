// libFuzzer target: the configuration loader (gateway/config.h parseConfig).
//
// Input: a configuration document (JSON text, as in /etc/smtpgate/smtpgate.json). Checked: no
// exception escapes (every problem must become a ConfigError), parsing is deterministic, every
// error has a message and an RFC 6901 pointer ("" or "/..." with valid ~0/~1 escapes) that
// names a value of the document or a member missing from an object of it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/config.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

constexpr const char* kTarget = "fuzz_config";

// The pointer's tokens, or false when it is not a valid RFC 6901 pointer.
bool tokens(std::string_view pointer, std::vector<std::string>& out) {
  if (pointer.empty()) return true;
  if (pointer[0] != '/') return false;
  std::string token;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      out.push_back(token);
      token.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) {
        return false;
      }
      token += pointer[++i] == '0' ? '~' : '/';
      continue;
    }
    token += pointer[i];
  }
  return true;
}

// The pointer names a value of `doc`, or a missing member of an object in it (for "required").
bool resolves(const nlohmann::json& doc, const std::vector<std::string>& path) {
  const nlohmann::json* at = &doc;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& t = path[i];
    const bool last = i + 1 == path.size();
    if (at->is_object()) {
      auto it = at->find(t);
      if (it == at->end()) return last;
      at = &*it;
    } else if (at->is_array()) {
      if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos ||
          (t.size() > 1 && t[0] == '0')) {
        return false;
      }
      const std::size_t index = std::stoul(t);
      if (index >= at->size()) return false;
      at = &(*at)[index];
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256 * 1024) {
    return -1;
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<smtpgate::ConfigError> errors;
  smtpgate::Config config = smtpgate::parseConfig(text, "/nonexistent/fuzz", errors);
  (void)config;

  std::vector<smtpgate::ConfigError> again;
  smtpgate::parseConfig(text, "/nonexistent/fuzz", again);
  FUZZ_CHECK(again.size() == errors.size());

  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const smtpgate::ConfigError& e = errors[i];
    FUZZ_CHECK(e.pointer == again[i].pointer && e.message == again[i].message, e.str());
    FUZZ_CHECK(!e.message.empty(), e.pointer);
    std::vector<std::string> path;
    FUZZ_CHECK(tokens(e.pointer, path), e.str());
    if (!doc.is_discarded()) {
      FUZZ_CHECK(resolves(doc, path), e.str());
    } else {
      FUZZ_CHECK(errors.size() == 1 && e.pointer.empty(), e.str());  // invalid JSON: one error
    }
  }
  return 0;
}
