#include "gateway/smtp/xtext.h"

namespace smtpgate::smtp {

namespace {

bool isXchar(unsigned char c) { return c >= '!' && c <= '~' && c != '+' && c != '='; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  // RFC 3461 asks for upper case; lower case is read too, as Postfix does.
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

}  // namespace

std::string xtextEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (isXchar(c)) {
      out += ch;
    } else {
      out += '+';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
  return out;
}

std::optional<std::string> xtextDecode(std::string_view xtext) {
  std::string out;
  out.reserve(xtext.size());
  for (std::size_t i = 0; i < xtext.size(); ++i) {
    const auto c = static_cast<unsigned char>(xtext[i]);
    if (c == '+') {
      if (i + 2 >= xtext.size()) {
        return std::nullopt;
      }
      const int hi = hexValue(xtext[i + 1]);
      const int lo = hexValue(xtext[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (isXchar(c)) {
      out += static_cast<char>(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace smtpgate::smtp
