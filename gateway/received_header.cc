#include "gateway/received_header.h"

#include <fmt/format.h>

#include <iterator>

#include "tls/handshake_facts.h"

namespace smtpgate {
namespace {

// HELO arguments are client-controlled: keep them to printable ASCII without parentheses so
// that the header stays parseable.
std::string cleanHelo(const std::string& helo) {
  std::string out;
  for (unsigned char c : helo) {
    if (out.size() >= 64) {
      break;
    }
    out += (c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != ';' && c != '\\')
               ? static_cast<char>(c)
               : '_';
  }
  return out.empty() ? "unknown" : out;
}

std::string protocolName(const smtp::Message& message, bool tls) {
  if (!message.esmtp) {
    return "SMTP";
  }
  std::string name = "ESMTP";
  if (tls) {
    name += "S";
  }
  if (!message.authUser.empty()) {
    name += "A";
  }
  return name;
}

std::string versionText(const std::string& label) {
  if (label == "1.0") {
    return "TLSv1";
  }
  return "TLSv" + label;
}

}  // namespace

std::string rfc5322Date(std::time_t when) {
  static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&when, &tm);
  return fmt::format("{}, {} {} {} {:02}:{:02}:{:02} +0000", days[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string receivedHeader(const smtp::Message& message, const SessionFacts& facts,
                           const std::string& hostname, const std::string& id, std::time_t now) {
  // Built once per message: one buffer, no string per piece.
  bool tls = !facts.tlsVersion.empty();
  fmt::memory_buffer out;
  auto to = std::back_inserter(out);
  fmt::format_to(to, "Received: from {} ([{}{}])\r\n", cleanHelo(message.helo),
                 facts.clientIp.find(':') != std::string::npos ? "IPv6:" : "", facts.clientIp);
  fmt::format_to(to, "\tby {} (smtpgate, endpoint {}", hostname, facts.endpoint);
  if (tls) {
    fmt::format_to(to, ", {}", versionText(facts.tlsVersion));
  }
  fmt::format_to(to, ") with {}\r\n\tid {}", protocolName(message, tls), id);
  // Naming the recipient is only safe with exactly one: more would disclose Bcc recipients.
  if (message.envelope.rcptTo.size() == 1) {
    fmt::format_to(to, " for <{}>", message.envelope.rcptTo.front());
  }
  if (tls) {
    fmt::format_to(to, "\r\n\ttls {}", facts.tlsCipher);
  }
  fmt::format_to(to, ";\r\n\t{}\r\n", rfc5322Date(now));
  return fmt::to_string(out);
}

}  // namespace smtpgate
