#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smtpgate::smtp {

// One complete SMTP reply from the backend (RFC 5321 §4.2).
struct Reply {
  int code = 0;                    // 200..599, the same on every line
  std::string enhanced;            // RFC 3463 code of the first line ("2.0.0"), "" when absent
  std::vector<std::string> lines;  // the text after "ddd-" / "ddd ", one per line
  std::string raw;                 // the reply as received, every line CRLF-terminated

  bool positive() const { return code >= 200 && code < 300; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500 && code < 600; }
  // The first line as it appeared ("554 5.7.1 Go away"), for logs and failure reasons.
  std::string firstLine() const;
};

// Turns backend bytes, split anywhere, into replies. The backend is trusted only as far as the
// grammar goes: a line that is too long, a reply with too many lines, a bad or changing code
// make the parser fail for good (the connection treats the backend as lost), so that nothing
// malformed ever reaches a client. Bare LF line ends are accepted; `raw` always uses CRLF.
class ReplyParser {
 public:
  // Octets per line including CRLF: Postfix's line_length_limit; RFC 5321 §4.5.3.1.5 says
  // 512, but real servers send longer text.
  static constexpr std::size_t kLineLimit = 2048;
  static constexpr std::size_t kMaxLines = 100;

  // Parses the bytes; returns the replies they complete, in order. After a failure (even
  // one in the middle of these bytes: the replies before it still come back) input is ignored.
  std::vector<Reply> feed(std::string_view bytes);

  bool failed() const { return !error_.empty(); }
  // Why the parser failed ("" while it has not).
  const std::string& error() const { return error_; }
  // True when part of a reply (a line or the first lines of a multi-line reply) is buffered.
  bool midReply() const { return !line_.empty() || !current_.lines.empty(); }
  // Forget everything, including a failure (the STARTTLS boundary).
  void reset();

 private:
  // One line without its terminator; false (and error_ set) when it breaks the grammar.
  bool takeLine(std::string_view line, std::vector<Reply>& out);
  void fail(std::string message);

  std::string line_;  // the unterminated line so far
  Reply current_;     // the lines of a multi-line reply so far
  std::string error_;
};

}  // namespace smtpgate::smtp
