#include "gateway/smtp/address.h"

#include <cctype>
#include <string_view>

namespace smtpgate::smtp {

namespace {

bool isUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      min = 0x80;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      min = 0x800;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      min = 0x10000;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3fu);
    }
    // Overlong forms, surrogates and values past Unicode are not UTF-8.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool isAtext(unsigned char c) {
  if (c >= 0x80) {
    return true;  // UTF-8, validated separately
  }
  if (std::isalnum(c) != 0) {
    return true;
  }
  static constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

bool isDotString(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') {
    return false;
  }
  char prev = 0;
  for (char ch : s) {
    if (ch == '.') {
      if (prev == '.') {
        return false;
      }
    } else if (!isAtext(static_cast<unsigned char>(ch))) {
      return false;
    }
    prev = ch;
  }
  return true;
}

// A quoted string at the start of s; returns its length including the quotes, or 0.
std::size_t quotedStringLength(std::string_view s) {
  if (s.empty() || s.front() != '"') {
    return 0;
  }
  for (std::size_t i = 1; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      return i + 1;
    }
    if (c < 0x20 || c == 0x7f) {
      return 0;
    }
    if (c == '\\') {
      if (i + 1 >= s.size()) {
        return 0;
      }
      const auto e = static_cast<unsigned char>(s[i + 1]);
      if (e < 0x20 || e == 0x7f) {
        return 0;
      }
      ++i;
    }
  }
  return 0;
}

bool isIpv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t digits = 0;
    unsigned value = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0 && digits < 4) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0 || digits > 3 || value > 255) {
      return false;
    }
    ++parts;
    if (i == s.size()) {
      return parts == 4;
    }
    if (s[i] != '.' || parts == 4) {
      return false;
    }
    ++i;
  }
}

bool isIpv6(std::string_view s) {
  // Loose on purpose: hex groups, colons, an optional embedded IPv4 tail.
  if (s.size() < 2 || s.find(':') == std::string_view::npos) {
    return false;
  }
  const std::size_t lastColon = s.rfind(':');
  std::string_view tail = s.substr(lastColon + 1);
  if (tail.find('.') != std::string_view::npos) {
    if (!isIpv4(tail)) {
      return false;
    }
    s = s.substr(0, lastColon + 1);
  }
  for (char ch : s) {
    if (ch != ':' && std::isxdigit(static_cast<unsigned char>(ch)) == 0) {
      return false;
    }
  }
  return true;
}

bool isAddressLiteral(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') {
    return false;
  }
  s = s.substr(1, s.size() - 2);
  if (s.size() > 5 && (s.substr(0, 5) == "IPv6:" || s.substr(0, 5) == "ipv6:")) {
    return isIpv6(s.substr(5));
  }
  return isIpv4(s);
}

}  // namespace

bool isValidDomain(std::string_view domain) {
  if (domain.empty() || domain.size() > 255 || !isUtf8(domain)) {
    return false;
  }
  if (domain.front() == '[') {
    return isAddressLiteral(domain);
  }
  std::size_t start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    std::string_view label =
        domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x80 && std::isalnum(c) == 0 && c != '-') {
        return false;
      }
    }
    if (dot == std::string_view::npos) {
      return true;
    }
    start = dot + 1;
  }
}

bool isValidMailbox(std::string_view address) {
  if (!isUtf8(address)) {
    return false;
  }
  std::size_t at = 0;
  if (!address.empty() && address.front() == '"') {
    at = quotedStringLength(address);
    if (at == 0 || at >= address.size() || address[at] != '@') {
      return false;
    }
  } else {
    at = address.rfind('@');
    if (at == std::string_view::npos || !isDotString(address.substr(0, at))) {
      return false;
    }
  }
  return isValidDomain(address.substr(at + 1));
}

ParsedPath parsePath(std::string_view text) {
  ParsedPath result;
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  if (text.empty() || text.front() != '<') {
    return result;
  }
  // Find the closing '>' outside a quoted local part, which may itself contain '>'.
  bool quoted = false;
  std::size_t close = std::string_view::npos;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted && ch == '\\') {
      ++i;
    } else if (ch == '"') {
      quoted = !quoted;
    } else if (!quoted && ch == '>') {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) {
    return result;
  }
  std::string_view rest = text.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ') {
    return result;
  }
  while (!rest.empty() && rest.front() == ' ') {
    rest.remove_prefix(1);
  }
  result.params = rest;
  std::string_view inner = text.substr(1, close - 1);
  result.status = PathStatus::Ok;
  if (!inner.empty() && inner.front() == '@') {
    // A source route "@a,@b:user@c": must be accepted and ignored (RFC 5321 §4.1.1.3).
    const std::size_t colon = inner.find(':');
    if (colon == std::string_view::npos) {
      result.status = PathStatus::BadAddress;
      return result;
    }
    std::string_view route = inner.substr(0, colon);
    std::size_t start = 0;
    while (start <= route.size()) {
      std::size_t comma = route.find(',', start);
      std::string_view hop =
          route.substr(start, comma == std::string_view::npos ? comma : comma - start);
      if (hop.size() < 2 || hop.front() != '@' || !isValidDomain(hop.substr(1))) {
        result.status = PathStatus::BadAddress;
        return result;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
    inner = inner.substr(colon + 1);
    if (inner.empty()) {
      result.status = PathStatus::BadAddress;
      return result;
    }
  }
  result.address.assign(inner);
  return result;
}

std::vector<std::string_view> splitParams(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    std::size_t end = text.find(' ', i);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace smtpgate::smtp
