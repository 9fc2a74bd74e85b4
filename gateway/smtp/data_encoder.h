#pragma once

#include <string>
#include <string_view>

namespace smtpgate::smtp {

// Encodes message content (CRLF line ends, unstuffed: what DataDecoder produced) for the wire
// toward a backend: a "." at the start of a line becomes "..", so the backend sees exactly the
// message the gateway saw (RFC 5321 §4.5.2). Streaming: chunks may split lines anywhere.
class DataEncoder {
 public:
  void reset() { atLineStart_ = true; pendingCr_ = false; }
  // The wire bytes for the next piece of content.
  std::string encode(std::string_view content);
  // The end of the message: a CRLF if the content did not end with one, then ".\r\n".
  std::string finish();

 private:
  bool atLineStart_ = true;
  bool pendingCr_ = false;  // the last byte was a CR (a CRLF may span two chunks)
};

}  // namespace smtpgate::smtp
