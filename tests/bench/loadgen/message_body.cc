#include "tests/bench/loadgen/message_body.h"

#include <ctime>

namespace smtpgate::loadgen {

std::string makeMessageWire(int64_t size, const std::string& from, const std::string& to) {
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string wire;
  wire.reserve(static_cast<size_t>(size) + static_cast<size_t>(size) / 3000 + 512);
  wire += "From: <" + from + ">\r\n";
  wire += "To: <" + to + ">\r\n";
  wire += "Subject: smtpgate-loadgen test message\r\n";
  wire += std::string("Date: ") + date + "\r\n";
  wire += "Message-ID: <" + std::to_string(now) + ".loadgen@loadgen.test>\r\n";
  wire += "MIME-Version: 1.0\r\n";
  wire += "Content-Type: text/plain; charset=us-ascii\r\n";
  wire += "\r\n";
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  int64_t unstuffed = static_cast<int64_t>(wire.size());
  for (int64_t line = 0; unstuffed < size; ++line) {
    // A full line is 76 characters + CRLF; the last one is shorter so that the size fits.
    int64_t room = size - unstuffed;
    int64_t chars = room >= 78 ? 76 : (room > 2 ? room - 2 : 1);
    std::string text;
    text.reserve(static_cast<size_t>(chars));
    for (int64_t i = 0; i < chars; ++i) {
      text.push_back(kAlphabet[(line * 7 + i) % (sizeof kAlphabet - 1)]);
    }
    if (line % 40 == 39) {
      text[0] = '.';
    }
    unstuffed += chars + 2;
    if (text[0] == '.') {
      wire.push_back('.');  // RFC 5321 §4.5.2
    }
    wire += text;
    wire += "\r\n";
  }
  wire += ".\r\n";
  return wire;
}

}  // namespace smtpgate::loadgen
