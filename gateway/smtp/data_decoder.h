#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpgate::smtp {

// Streaming decoder of the DATA phase (RFC 5321 §4.1.1.4, §4.5.2), safe against SMTP
// smuggling: CRLF is a line end, and a bare LF or a bare CR (one not followed by LF) is a
// "bare line end". Every line end is stored as CRLF, but only ".", preceded AND followed by a
// real CRLF, ends the data: LF.LF, LF.CRLF, CRLF.LF, CR.CR, CRLF.CR and the like stay content.
// Lines starting with "." and more get their first dot removed; a lone "." that is not the
// terminator is kept as ".". The result is the same for any split of the input into chunks.
class DataDecoder {
 public:
  // Begin a message. afterCrlf: the DATA command line ended with CRLF, so a "." CRLF right
  // away ends an empty message.
  void start(std::size_t maxBytes, bool afterCrlf);
  // Consumes bytes up to and including the terminator; returns how many were used. Bytes
  // after the terminator belong to the next command and are left to the caller.
  std::size_t feed(std::string_view bytes);

  bool done() const { return state_ == State::Done; }
  // The content outgrew maxBytes: it was discarded while reading on to the terminator.
  bool overflow() const { return overflow_; }
  // A bare CR or LF was seen (what BareLfPolicy::Reject refuses).
  bool sawBareLineEnd() const { return sawBare_; }
  // Content octets so far, counted even after an overflow.
  std::size_t size() const { return size_; }
  // The content (CRLF line ends, unstuffed); empty after an overflow.
  std::string takeContent();

 private:
  enum class State {
    LineStart,  // at the first octet of a line
    Dot,        // the line so far is "."
    DotCr,      // the line so far is "." CR
    InLine,     // inside a line
    Cr,         // a CR inside a line, waiting to see whether LF follows
    Done,
  };

  void emit(std::string_view bytes);
  void endLine(bool crlf);

  State state_ = State::Done;
  bool prevCrlf_ = false;  // the line end before the current line was a real CRLF
  bool sawBare_ = false;
  bool overflow_ = false;
  std::size_t max_ = 0;
  std::size_t size_ = 0;
  std::string content_;
};

}  // namespace smtpgate::smtp
