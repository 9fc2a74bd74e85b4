#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace smtpgate::log {

enum class Level { Debug, Info, Warning, Error };

// Plain lines on stderr: "2026-11-27T22:14:07.123Z info: text". One write per line, so
// lines of several worker threads never interleave. Never pass secrets.
void write(Level level, std::string_view text);
void setMinLevel(Level level);
bool enabled(Level level);
// An event-loop thread gathers its lines and writes them with flushThread(), which its loop
// calls once per iteration: the lines of one iteration (many sessions under load) share one
// write(2). Other threads write each line at once. Lines stay whole and in order.
void bufferThread(bool on);
void flushThread();

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Info)) {
    write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Warning)) {
    write(Level::Warning, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Debug)) {
    write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
  }
}

// Text with every control character (C0 and DEL) written as \xNN; UTF-8 is left as it is.
// write() applies it to every line; command-line tables use it for untrusted cells.
std::string escapeControls(std::string_view text);

// Printable form of untrusted text for a log line: control characters escaped, capped length.
std::string sanitize(std::string_view text, std::size_t maxLength = 200);

}  // namespace smtpgate::log
