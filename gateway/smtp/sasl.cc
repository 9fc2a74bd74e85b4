#include "gateway/smtp/sasl.h"

#include <array>
#include <cstdint>

namespace smtpgate::smtp {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> makeTable() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) {
    v = -1;
  }
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}

constexpr std::array<std::int8_t, 256> kTable = makeTable();

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if ((x >= 'A' && x <= 'Z' ? x + 32 : x) != (y >= 'A' && y <= 'Z' ? y + 32 : y)) {
      return false;
    }
  }
  return true;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool isB64Token(std::string_view token) {
  std::size_t i = 0;
  while (i < token.size()) {
    const char c = token[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.' && c != '_' && c != '~' && c != '+' && c != '/') {
      break;
    }
    ++i;
  }
  if (i == 0) {
    return false;
  }
  while (i < token.size() && token[i] == '=') {
    ++i;
  }
  return i == token.size();
}

}  // namespace

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=') {
        // Padding only at the end of the last group, and at most two.
        if (!last || k < 2) {
          return std::nullopt;
        }
        ++pad;
        group <<= 6;
        continue;
      }
      if (pad > 0) {
        return std::nullopt;  // data after padding
      }
      const std::int8_t v = kTable[static_cast<unsigned char>(c)];
      if (v < 0) {
        return std::nullopt;
      }
      group = (group << 6) | static_cast<std::uint32_t>(v);
    }
    // Unused bits must be zero (RFC 4648 §3.5): one encoding per byte string.
    if ((pad == 1 && (group & 0xffu) != 0) || (pad == 2 && (group & 0xffffu) != 0)) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>((group >> 16) & 0xffu));
    if (pad < 2) {
      out.push_back(static_cast<char>((group >> 8) & 0xffu));
    }
    if (pad < 1) {
      out.push_back(static_cast<char>(group & 0xffu));
    }
  }
  return out;
}

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group =
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
        (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(kAlphabet[(group >> 18) & 63u]);
    out.push_back(kAlphabet[(group >> 12) & 63u]);
    out.push_back(kAlphabet[(group >> 6) & 63u]);
    out.push_back(kAlphabet[group & 63u]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) {
      group |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    }
    out.push_back(kAlphabet[(group >> 18) & 63u]);
    out.push_back(kAlphabet[(group >> 12) & 63u]);
    out.push_back(rest == 2 ? kAlphabet[(group >> 6) & 63u] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> decodeSaslResponse(std::string_view line) {
  // "=" is the empty initial response; an empty continuation line is empty too.
  if (line == "=" || line.empty()) {
    return std::string();
  }
  return base64Decode(line);
}

std::optional<PlainCredentials> parsePlain(std::string_view decoded) {
  const std::size_t first = decoded.find('\0');
  if (first == std::string_view::npos) {
    return std::nullopt;
  }
  const std::size_t second = decoded.find('\0', first + 1);
  if (second == std::string_view::npos ||
      decoded.find('\0', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  PlainCredentials creds;
  creds.authzid.assign(decoded.substr(0, first));
  creds.authcid.assign(decoded.substr(first + 1, second - first - 1));
  creds.password.assign(decoded.substr(second + 1));
  if (creds.authcid.empty()) {
    return std::nullopt;
  }
  return creds;
}

std::optional<std::string> xoauth2User(std::string_view decoded) {
  constexpr std::string_view kUser = "user=";
  constexpr std::string_view kAuth = "auth=";
  constexpr std::string_view kScheme = "Bearer";
  constexpr std::string_view kEnd = "\x01\x01";
  if (!decoded.starts_with(kUser)) {
    return std::nullopt;
  }
  decoded.remove_prefix(kUser.size());
  const std::size_t sep = decoded.find('\x01');
  if (sep == 0 || sep == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view user = decoded.substr(0, sep);
  for (char ch : user) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      return std::nullopt;
    }
  }
  std::string_view auth = decoded.substr(sep + 1);
  if (!auth.starts_with(kAuth) || !auth.ends_with(kEnd)) {
    return std::nullopt;
  }
  auth.remove_prefix(kAuth.size());
  auth.remove_suffix(kEnd.size());
  // Exactly one space between scheme and token; the token's alphabet excludes ^A, so
  // nothing (no third field, no stray ^A) can hide before the final ^A^A.
  if (auth.size() <= kScheme.size() || !equalsNoCase(auth.substr(0, kScheme.size()), kScheme) ||
      auth[kScheme.size()] != ' ' || !isB64Token(auth.substr(kScheme.size() + 1))) {
    return std::nullopt;
  }
  return std::string(user);
}

void secureWipe(std::string& secret) {
  volatile char* bytes = secret.data();
  for (std::size_t i = 0; i < secret.size(); ++i) {
    bytes[i] = 0;
  }
  secret.clear();
}

}  // namespace smtpgate::smtp
