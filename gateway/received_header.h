#pragma once

#include <ctime>
#include <string>

#include "gateway/smtp/message.h"
#include "gateway/spool.h"

namespace smtpgate {

// The trace line the gateway prepends (RFC 5321 §4.4, protocol names of RFC 3848, the "tls"
// clause of RFC 8314 §4.3), folded at 78 columns, CRLF-terminated:
//   Received: from client.example ([192.0.2.10])
//   	by smtp.example.com (smtpgate, endpoint strict, TLSv1.3) with ESMTPS
//   	id 0A1B2C3D4E5F for <rcpt@example.com>
//   	tls TLS_AES_256_GCM_SHA384; Fri, 27 Nov 2026 22:14:07 +0000
std::string receivedHeader(const smtp::Message& message, const SessionFacts& facts,
                           const std::string& hostname, const std::string& id, std::time_t now);

// "Fri, 27 Nov 2026 22:14:07 +0000" (RFC 5322 date-time, UTC).
std::string rfc5322Date(std::time_t when);

}  // namespace smtpgate
