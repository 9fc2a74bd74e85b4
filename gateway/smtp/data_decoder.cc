#include "gateway/smtp/data_decoder.h"

#include <utility>

namespace smtpgate::smtp {

void DataDecoder::start(std::size_t maxBytes, bool afterCrlf) {
  state_ = State::LineStart;
  prevCrlf_ = afterCrlf;
  sawBare_ = false;
  overflow_ = false;
  max_ = maxBytes;
  size_ = 0;
  content_.clear();
}

std::string DataDecoder::takeContent() {
  std::string out = std::move(content_);
  content_.clear();
  return out;
}

void DataDecoder::emit(std::string_view bytes) {
  size_ += bytes.size();
  if (overflow_) {
    return;
  }
  if (size_ > max_) {
    // Keep reading to the terminator but stop holding memory for a message we refuse.
    overflow_ = true;
    content_.clear();
    content_.shrink_to_fit();
    return;
  }
  content_.append(bytes);
}

void DataDecoder::endLine(bool crlf) {
  emit("\r\n");
  if (!crlf) {
    sawBare_ = true;
  }
  prevCrlf_ = crlf;
  state_ = State::LineStart;
}

std::size_t DataDecoder::feed(std::string_view bytes) {
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  while (i < n && state_ != State::Done) {
    const char c = bytes[i];
    switch (state_) {
      case State::LineStart:
        ++i;
        if (c == '.') {
          state_ = State::Dot;
        } else if (c == '\r') {
          state_ = State::Cr;
        } else if (c == '\n') {
          endLine(false);
        } else {
          emit(std::string_view(&bytes[i - 1], 1));
          state_ = State::InLine;
        }
        break;
      case State::Dot:
        ++i;
        if (c == '\r') {
          state_ = State::DotCr;
        } else if (c == '\n') {
          emit(".");
          endLine(false);
        } else {
          // Dot-unstuffing: the leading dot goes, the octet after it stays.
          emit(std::string_view(&bytes[i - 1], 1));
          state_ = State::InLine;
        }
        break;
      case State::DotCr:
        if (c == '\n') {
          ++i;
          if (prevCrlf_) {
            state_ = State::Done;  // CRLF "." CRLF
          } else {
            emit(".");
            endLine(true);
          }
        } else {
          // "." ended by a bare CR: content; the octet starts the next line.
          emit(".");
          endLine(false);
        }
        break;
      case State::InLine: {
        // Copy the run up to the next CR or LF in one go: the common case of a long body.
        // (One linear scan: memchr for each of CR and LF could rescan a chunk per line.)
        std::size_t j = i;
        while (j < n && bytes[j] != '\r' && bytes[j] != '\n') {
          ++j;
        }
        const char* begin = bytes.data() + i;
        const std::size_t run = j - i;
        emit(std::string_view(begin, run));
        i += run;
        if (i < n) {
          if (bytes[i] == '\n') {
            endLine(false);
          } else {
            state_ = State::Cr;
          }
          ++i;
        }
        break;
      }
      case State::Cr:
        if (c == '\n') {
          ++i;
          endLine(true);
        } else {
          endLine(false);  // bare CR; this octet starts the next line
        }
        break;
      case State::Done:
        break;
    }
  }
  return i;
}

}  // namespace smtpgate::smtp
