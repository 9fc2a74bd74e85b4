#pragma once

#include <string>
#include <string_view>

namespace smtpgate::policy {

// ASCII-only lower-casing: domain names, mailbox names and keys compare case-insensitively in
// ASCII; other bytes (UTF-8) are left as they are, whatever the process locale.
inline std::string asciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

}  // namespace smtpgate::policy
