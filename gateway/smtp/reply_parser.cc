#include "gateway/smtp/reply_parser.h"

#include <utility>

namespace smtpgate::smtp {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Up to three digits at text[pos]; advances pos. False when there is none or a fourth.
bool digits(std::string_view text, std::size_t& pos) {
  std::size_t start = pos;
  while (pos < text.size() && isDigit(text[pos])) {
    ++pos;
  }
  return pos > start && pos - start <= 3;
}

// RFC 3463 "class.subject.detail" at the start of the first line, whose class must be the
// first digit of the reply code (RFC 2034 §4), followed by a space or the end of the line.
std::string enhancedCode(int code, std::string_view text) {
  if (text.size() < 5 || text[0] != static_cast<char>('0' + code / 100) || text[1] != '.') {
    return {};
  }
  std::size_t pos = 2;
  if (!digits(text, pos) || pos >= text.size() || text[pos] != '.') {
    return {};
  }
  ++pos;
  if (!digits(text, pos) || (pos < text.size() && text[pos] != ' ')) {
    return {};
  }
  return std::string(text.substr(0, pos));
}

}  // namespace

std::string Reply::firstLine() const {
  std::string out = std::to_string(code);
  if (!lines.empty() && !lines.front().empty()) {
    out += ' ';
    out += lines.front();
  }
  return out;
}

std::vector<Reply> ReplyParser::feed(std::string_view bytes) {
  std::vector<Reply> out;
  while (!bytes.empty() && !failed()) {
    std::size_t lf = bytes.find('\n');
    if (lf == std::string_view::npos) {
      line_.append(bytes);
      // Fail as soon as the line cannot fit any more, not when its end finally comes.
      const std::size_t text = line_.size() - (line_.back() == '\r' ? 1 : 0);
      if (text + 2 > kLineLimit) {
        fail("reply line longer than " + std::to_string(kLineLimit) + " octets");
      }
      return out;
    }
    line_.append(bytes.substr(0, lf));
    bytes.remove_prefix(lf + 1);
    std::string line = std::move(line_);
    line_.clear();
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (!takeLine(line, out)) {
      return out;
    }
  }
  return out;
}

bool ReplyParser::takeLine(std::string_view line, std::vector<Reply>& out) {
  if (line.size() + 2 > kLineLimit) {
    fail("reply line longer than " + std::to_string(kLineLimit) + " octets");
    return false;
  }
  // A CR or NUL inside the text would travel on to the client unchanged: no such reply.
  if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
    fail("reply line with a bare CR or NUL");
    return false;
  }
  if (line.size() < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2])) {
    fail("reply line without a three-digit code: \"" + std::string(line.substr(0, 40)) + "\"");
    return false;
  }
  const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (code < 200 || code > 599) {
    fail("reply code " + std::to_string(code) + " out of range");
    return false;
  }
  bool last = true;
  if (line.size() > 3) {
    if (line[3] == '-') {
      last = false;
    } else if (line[3] != ' ') {
      fail("reply line with a bad separator after the code: \"" + std::string(line.substr(0, 40)) +
           "\"");
      return false;
    }
  }
  if (!current_.lines.empty() && code != current_.code) {
    fail("reply code changed from " + std::to_string(current_.code) + " to " +
         std::to_string(code) + " within one reply");
    return false;
  }
  if (current_.lines.size() >= kMaxLines) {
    fail("reply longer than " + std::to_string(kMaxLines) + " lines");
    return false;
  }
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
  if (current_.lines.empty()) {
    current_.code = code;
    current_.enhanced = enhancedCode(code, text);
  }
  current_.lines.emplace_back(text);
  current_.raw.append(line);
  current_.raw.append("\r\n");
  if (last) {
    out.push_back(std::move(current_));
    current_ = Reply();
  }
  return true;
}

void ReplyParser::fail(std::string message) {
  error_ = std::move(message);
  line_.clear();
  current_ = Reply();
}

void ReplyParser::reset() {
  line_.clear();
  current_ = Reply();
  error_.clear();
}

}  // namespace smtpgate::smtp
