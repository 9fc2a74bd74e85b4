#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smtpgate::smtp {

struct Envelope {
  std::string mailFrom;                  // reverse-path without <>, "" for the null sender
  std::vector<std::string> mailParams;   // ESMTP parameters of MAIL as sent (e.g. "BODY=8BITMIME")
  std::vector<std::string> rcptTo;       // forward-paths without <>
};

// One message as the gateway accepted it: the content is the unstuffed text with CRLF line
// ends (every bare CR/LF normalised), exactly what the backend must see.
struct Message {
  Envelope envelope;
  std::string content;
  std::string helo;      // the EHLO/HELO argument of the session
  bool esmtp = false;    // EHLO (true) or HELO
  std::string authUser;  // "" when not authenticated
};

}  // namespace smtpgate::smtp
