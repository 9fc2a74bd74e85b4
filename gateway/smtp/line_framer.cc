#include "gateway/smtp/line_framer.h"

#include <algorithm>
#include <cctype>

namespace smtpgate::smtp {

namespace {

bool startsWithAuth(std::string_view line) {
  static constexpr std::string_view kAuth = "AUTH ";
  if (line.size() < kAuth.size()) {
    return false;
  }
  for (std::size_t i = 0; i < kAuth.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(line[i])) != kAuth[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::size_t LineFramer::limitFor(std::string_view line, Mode mode) {
  if (mode == Mode::AuthResponse || startsWithAuth(line)) {
    return kAuthLimit;
  }
  return kCommandLimit;
}

void LineFramer::append(std::string_view bytes) {
  if (discarding_) {
    // Drop the rest of a reported over-long line without ever storing it.
    std::size_t lf = bytes.find('\n');
    if (lf == std::string_view::npos) {
      return;
    }
    discarding_ = false;
    bytes.remove_prefix(lf + 1);
  }
  if (bytes.empty()) {
    return;
  }
  compact();
  buf_.append(bytes);
}

LineFramer::Frame LineFramer::next(Mode mode) {
  Frame frame;
  if (discarding_) {
    std::size_t lf = buf_.find('\n', pos_);
    if (lf == std::string::npos) {
      clear();
      discarding_ = true;
      return frame;
    }
    discarding_ = false;
    pos_ = lf + 1;
  }
  std::string_view rest = peek();
  std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    // Without its terminator the line needs at least one more octet, so reaching the
    // limit already means it is too long: report now and drop the rest as it streams.
    if (!rest.empty() && rest.size() >= limitFor(rest, mode)) {
      clear();
      discarding_ = true;
      frame.status = Status::TooLong;
    }
    return frame;
  }
  std::string_view line = rest.substr(0, lf);
  pos_ += lf + 1;
  if (lf + 1 > limitFor(line, mode)) {
    frame.status = Status::TooLong;
    return frame;
  }
  frame.status = Status::Line;
  frame.crlf = !line.empty() && line.back() == '\r';
  if (frame.crlf) {
    line.remove_suffix(1);
  }
  frame.text.assign(line);
  return frame;
}

std::optional<std::string_view> LineFramer::peekLine() const {
  std::string_view rest = peek();
  if (discarding_) {
    // The tail of a reported over-long line goes first, as in next().
    const std::size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) {
      return std::nullopt;
    }
    rest.remove_prefix(lf + 1);
  }
  const std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    return std::nullopt;
  }
  return rest.substr(0, lf + 1);
}

void LineFramer::consume(std::size_t n) {
  pos_ += std::min(n, buffered());
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
}

void LineFramer::clear() {
  buf_.clear();
  pos_ = 0;
  discarding_ = false;
  // A large pipelined burst must not pin its memory for the rest of the session.
  if (buf_.capacity() > 4 * kAuthLimit) {
    buf_.shrink_to_fit();
  }
}

void LineFramer::compact() {
  if (pos_ == 0) {
    return;
  }
  buf_.erase(0, pos_);
  pos_ = 0;
  if (buf_.empty() && buf_.capacity() > 4 * kAuthLimit) {
    buf_.shrink_to_fit();
  }
}

}  // namespace smtpgate::smtp
