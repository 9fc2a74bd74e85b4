#include "gateway/smtp/data_encoder.h"

namespace smtpgate::smtp {

std::string DataEncoder::encode(std::string_view content) {
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 2);
  for (char c : content) {
    if (atLineStart_ && c == '.') {
      out += '.';
    }
    out += c;
    // Only CRLF ends a line: the decoder normalised every bare CR and LF already, so a lone
    // CR or LF here is content that a backend must not see as a line end either.
    atLineStart_ = pendingCr_ && c == '\n';
    pendingCr_ = c == '\r';
  }
  return out;
}

std::string DataEncoder::finish() {
  std::string out;
  if (!atLineStart_) {
    out += pendingCr_ ? "\n" : "\r\n";
  }
  out += ".\r\n";
  reset();
  return out;
}

}  // namespace smtpgate::smtp
