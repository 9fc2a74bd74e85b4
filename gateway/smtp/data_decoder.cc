#include "gateway/smtp/data_decoder.h"

#include <cstring>
#include <utility>

namespace smtpgate::smtp {

namespace {

// A message read to its end leaves at most this much buffer behind for the next one.
constexpr std::size_t kKeepCapacity = 256 * 1024;

}  // namespace

void DataDecoder::start(std::size_t maxBytes, bool afterCrlf, Output output) {
  state_ = State::LineStart;
  output_ = output;
  prevCrlf_ = afterCrlf;
  sawBare_ = false;
  overflow_ = false;
  storedLineStart_ = true;
  max_ = maxBytes;
  size_ = 0;
  content_.clear();
  if (content_.capacity() > kKeepCapacity) {
    content_.shrink_to_fit();
  }
}

std::string DataDecoder::takeContent() {
  std::string out = std::move(content_);
  content_.clear();
  return out;
}

void DataDecoder::reserve(std::size_t bytes) {
  if (!overflow_ && content_.capacity() - content_.size() < bytes) {
    content_.reserve(content_.size() + bytes);
  }
}

bool DataDecoder::account(std::size_t count) {
  size_ += count;
  if (overflow_) {
    return false;
  }
  if (size_ > max_) {
    // Keep reading to the terminator but stop holding memory for a message we refuse.
    overflow_ = true;
    std::string().swap(content_);
    return false;
  }
  return true;
}

void DataDecoder::emit(std::string_view bytes) {
  if (bytes.empty() || !account(bytes.size())) {
    return;
  }
  if (output_ == Output::Stuffed && storedLineStart_ && bytes.front() == '.') {
    content_ += '.';  // RFC 5321 §4.5.2 toward the backend
  }
  content_.append(bytes);
  storedLineStart_ = false;
}

void DataDecoder::endLine(bool crlf) {
  emit("\r\n");
  storedLineStart_ = true;
  if (!crlf) {
    sawBare_ = true;
  }
  prevCrlf_ = crlf;
  state_ = State::LineStart;
}

std::size_t DataDecoder::copyPlainLines(std::string_view bytes, std::size_t from,
                                        NextLineEnds& next) {
  const std::size_t n = bytes.size();
  const char* const data = bytes.data();
  // The first CR or LF at or after p, from the cache when it is still ahead of p: every octet
  // is searched once per feed(), however many short or bare-CR lines a chunk holds.
  auto find = [&](std::size_t& cached, char octet, std::size_t p) {
    if (cached == std::string_view::npos || cached < p) {
      const void* at = std::memchr(data + p, octet, n - p);
      cached = at == nullptr ? n : static_cast<std::size_t>(static_cast<const char*>(at) - data);
    }
    return cached;
  };
  std::size_t p = from;
  std::size_t addedDots = 0;  // Stuffed: the ".." lines, whose content is one octet shorter
  while (p < n) {
    const char first = data[p];
    if (first == '\r' || first == '\n') {
      break;
    }
    if (first == '.' && (output_ != Output::Stuffed || p + 1 == n || data[p + 1] != '.')) {
      break;
    }
    // Plain: the first CR of the line is the one right before its LF. Otherwise it is
    // incomplete, ended by a bare LF or holds a bare CR, and the state machine decides.
    const std::size_t lf = find(next.lf, '\n', p);
    if (lf == n || find(next.cr, '\r', p) != lf - 1) {
      break;
    }
    addedDots += first == '.' ? 1 : 0;
    p = lf + 1;
  }
  const std::size_t taken = p - from;
  if (taken == 0) {
    return 0;
  }
  prevCrlf_ = true;
  if (account(taken - addedDots)) {
    content_.append(data + from, taken);
    storedLineStart_ = true;
  }
  return taken;
}

std::size_t DataDecoder::feed(std::string_view bytes) {
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  NextLineEnds next;
  while (i < n && state_ != State::Done) {
    const char c = bytes[i];
    switch (state_) {
      case State::LineStart: {
        const std::size_t plain = copyPlainLines(bytes, i, next);
        if (plain > 0) {
          i += plain;
          break;
        }
        if (c == '.') {
          ++i;
          state_ = State::Dot;
        } else if (c == '\r') {
          ++i;
          state_ = State::Cr;
        } else if (c == '\n') {
          ++i;
          endLine(false);
        } else {
          state_ = State::InLine;  // the octet starts the run InLine copies
        }
        break;
      }
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
        // Copy the run up to the next CR or LF in one go (a line longer than the chunk, or
        // one with bare line ends). One linear scan: memchr for each of CR and LF could
        // rescan a chunk per line.
        std::size_t j = i;
        while (j < n && bytes[j] != '\r' && bytes[j] != '\n') {
          ++j;
        }
        emit(bytes.substr(i, j - i));
        i = j;
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
