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
  // What the decoder stores: the content itself (for the spool), or the content dot-stuffed
  // again for the wire toward a backend (a content line starting with "." gets a second dot),
  // which for a well-formed message is the input byte for byte and is copied in whole runs.
  enum class Output { Content, Stuffed };

  // Begin a message. afterCrlf: the DATA command line ended with CRLF, so a "." CRLF right
  // away ends an empty message.
  void start(std::size_t maxBytes, bool afterCrlf, Output output = Output::Content);
  // Consumes bytes up to and including the terminator; returns how many were used. Bytes
  // after the terminator belong to the next command and are left to the caller.
  std::size_t feed(std::string_view bytes);

  bool done() const { return state_ == State::Done; }
  // The content outgrew maxBytes: it was discarded while reading on to the terminator.
  bool overflow() const { return overflow_; }
  // A bare CR or LF was seen (what BareLfPolicy::Reject refuses).
  bool sawBareLineEnd() const { return sawBare_; }
  // Content octets so far (without the dots Output::Stuffed adds), counted even after an
  // overflow.
  std::size_t size() const { return size_; }
  // What was stored since the last take (CRLF line ends; unstuffed or stuffed as asked);
  // empty after an overflow. Streaming callers take it after each feed().
  std::string takeContent();
  // Room for `bytes` more octets of stored output, so that a streaming caller that takes the
  // content after each feed() gets one allocation per chunk rather than a growth series.
  void reserve(std::size_t bytes);

 private:
  enum class State {
    LineStart,  // at the first octet of a line
    Dot,        // the line so far is "."
    DotCr,      // the line so far is "." CR
    InLine,     // inside a line
    Cr,         // a CR inside a line, waiting to see whether LF follows
    Done,
  };

  // Content octets (the store's part of size_ and max_ applies).
  void emit(std::string_view bytes);
  void endLine(bool crlf);
  // At a line start: the longest run of whole lines that decode to themselves (CRLF-ended,
  // no other CR or LF, not starting with "." — with Output::Stuffed, lines starting with ".."
  // too, since unstuffing and stuffing again gives them back), stored in one append.
  // Starts at bytes[from]. Returns the octets taken; 0 when the next line needs the state
  // machine. `next` carries the search results from one call to the next within a feed().
  struct NextLineEnds {
    std::size_t cr = std::string_view::npos;  // npos: not searched yet; size(): none left
    std::size_t lf = std::string_view::npos;
  };
  std::size_t copyPlainLines(std::string_view bytes, std::size_t from, NextLineEnds& next);
  // True when `count` more content octets fit under max_ (else the overflow is recorded).
  bool account(std::size_t count);

  State state_ = State::Done;
  Output output_ = Output::Content;
  bool prevCrlf_ = false;  // the line end before the current line was a real CRLF
  bool sawBare_ = false;
  bool overflow_ = false;
  bool storedLineStart_ = true;  // the next stored content octet starts a line
  std::size_t max_ = 0;
  std::size_t size_ = 0;
  std::string content_;
};

}  // namespace smtpgate::smtp
