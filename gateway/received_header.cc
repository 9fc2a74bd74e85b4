#include "gateway/received_header.h"

#include <fmt/format.h>

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
  bool tls = !facts.tlsVersion.empty();
  std::string address = facts.clientIp.find(':') != std::string::npos
                            ? "IPv6:" + facts.clientIp
                            : facts.clientIp;
  std::string out = fmt::format("Received: from {} ([{}])\r\n", cleanHelo(message.helo), address);
  std::string comment = fmt::format("smtpgate, endpoint {}", facts.endpoint);
  if (tls) {
    comment += ", " + versionText(facts.tlsVersion);
  }
  out += fmt::format("\tby {} ({}) with {}\r\n", hostname, comment, protocolName(message, tls));
  out += fmt::format("\tid {}", id);
  // Naming the recipient is only safe with exactly one: more would disclose Bcc recipients.
  if (message.envelope.rcptTo.size() == 1) {
    out += fmt::format(" for <{}>", message.envelope.rcptTo.front());
  }
  if (tls) {
    out += fmt::format("\r\n\ttls {}", facts.tlsCipher);
  }
  out += fmt::format(";\r\n\t{}\r\n", rfc5322Date(now));
  return out;
}

}  // namespace smtpgate
