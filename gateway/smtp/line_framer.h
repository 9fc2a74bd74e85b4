#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace smtpgate::smtp {

// Splits client input into command lines (RFC 5321 §4.1.1, §4.5.3.1.4). A line ends at LF;
// a CR right before that LF is part of the terminator. Over-long lines are reported once and
// then dropped as they stream in, so a partial line never occupies more than the limit.
// While the session is paused (awaiting AUTH or delivery) bytes are only appended: the
// connection bounds that with its read watermark (bufferedBytes()).
class LineFramer {
 public:
  // RFC 5321 §4.5.3.1.4: 512 octets including CRLF; RFC 4954 §4: AUTH lines up to 12288.
  static constexpr std::size_t kCommandLimit = 512;
  static constexpr std::size_t kAuthLimit = 12288;

  enum class Mode {
    Command,       // kCommandLimit, or kAuthLimit for a line that starts with "AUTH "
    AuthResponse,  // a SASL response line: kAuthLimit
  };
  enum class Status { Line, TooLong, NeedMore };
  struct Frame {
    Status status = Status::NeedMore;
    std::string text;   // Line: the line without its terminator
    bool crlf = false;  // Line: ended with CRLF (false: bare LF)
  };

  void append(std::string_view bytes);
  // The next complete line, TooLong once per over-long line, or NeedMore.
  Frame next(Mode mode);
  // The next complete line as next() would frame it (terminator included), without taking
  // it; nullopt while it is incomplete. Lets a paused session look at what comes next.
  std::optional<std::string_view> peekLine() const;
  // Raw access for the DATA phase, which has its own decoder.
  std::string_view peek() const { return std::string_view(buf_).substr(pos_); }
  void consume(std::size_t n);
  // Forget everything, e.g. the STARTTLS wipe.
  void clear();
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Nothing buffered and no over-long line being dropped: input may bypass the buffer.
  bool idle() const { return buffered() == 0 && !discarding_; }

 private:
  static std::size_t limitFor(std::string_view line, Mode mode);
  void compact();

  std::string buf_;
  std::size_t pos_ = 0;      // start of the unread bytes in buf_
  bool discarding_ = false;  // inside an over-long line already reported
};

}  // namespace smtpgate::smtp
