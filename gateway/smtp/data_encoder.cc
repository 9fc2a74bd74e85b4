#include "gateway/smtp/data_encoder.h"

#include <cstring>

namespace smtpgate::smtp {

std::string DataEncoder::encode(std::string_view content) {
  std::string out;
  out.reserve(content.size() + content.size() / 64 + 2);
  const char* p = content.data();
  const char* const end = p + content.size();
  // Line by line (one memchr and one append each), not octet by octet.
  while (p < end) {
    if (atLineStart_ && *p == '.') {
      out += '.';
    }
    const auto* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (lf == nullptr) {
      out.append(p, end);
      atLineStart_ = false;
      pendingCr_ = end[-1] == '\r';
      break;
    }
    // Only CRLF ends a line: the decoder normalised every bare CR and LF already, so a lone
    // CR or LF here is content that a backend must not see as a line end either.
    atLineStart_ = lf > content.data() ? lf[-1] == '\r' : pendingCr_;
    pendingCr_ = false;
    out.append(p, lf + 1);
    p = lf + 1;
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
