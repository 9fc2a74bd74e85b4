#include "gateway/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <iterator>

namespace smtpgate::log {
namespace {

std::atomic<Level> minLevel{Level::Info};

// A buffering thread writes at least this often, whatever its loop does.
constexpr std::size_t kFlushBytes = 64 * 1024;

struct ThreadLines {
  bool buffered = false;
  std::string pending;
};
thread_local ThreadLines threadLines;

// One write(2) per call keeps lines whole across threads (stderr is unbuffered).
void writeOut(std::string_view text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) {
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

const char* levelName(Level level) {
  switch (level) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warning:
      return "warning";
    case Level::Error:
      return "error";
  }
  return "info";
}

}  // namespace

// Every line is one line: control characters in any part of it (a client string a caller
// forgot to sanitize, an error text with a newline) are written as \xNN, so nothing logged
// can forge a line or drive a terminal.
namespace {
bool isControl(unsigned char c) { return c < 0x20 || c == 0x7f; }
}  // namespace

std::string escapeControls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (isControl(c)) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void setMinLevel(Level level) { minLevel = level; }

bool enabled(Level level) { return level >= minLevel.load(std::memory_order_relaxed); }

void write(Level level, std::string_view text) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  // Escaped only when it has to be: most lines have no control character.
  std::string escaped;
  if (std::any_of(text.begin(), text.end(), [](char c) { return isControl(c); })) {
    escaped = escapeControls(text);
    text = escaped;
  }
  constexpr std::string_view kFormat = "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {}: {}\n";
  if (threadLines.buffered) {
    fmt::format_to(std::back_inserter(threadLines.pending), kFormat, tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis,
                   levelName(level), text);
    if (threadLines.pending.size() >= kFlushBytes) {
      flushThread();
    }
    return;
  }
  writeOut(fmt::format(kFormat, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, millis, levelName(level), text));
}

void bufferThread(bool on) {
  if (!on) {
    flushThread();
  }
  threadLines.buffered = on;
}

void flushThread() {
  if (threadLines.pending.empty()) {
    return;
  }
  writeOut(threadLines.pending);
  threadLines.pending.clear();
  if (threadLines.pending.capacity() > kFlushBytes) {
    threadLines.pending.shrink_to_fit();  // a burst does not pin its memory
  }
}

std::string sanitize(std::string_view text, std::size_t maxLength) {
  if (text.size() > maxLength) {
    return escapeControls(text.substr(0, maxLength)) + "...";
  }
  return escapeControls(text);
}

}  // namespace smtpgate::log
