#pragma once

#include <string_view>

// The fixed reply texts of the session (without CRLF): part of the product contract, shared
// with the tests. Replies that name the host are built in smtp_session.cc and relay_session.cc
// ("421 4.4.2 {host} Error: backend not available", "451 4.4.1 {host} Error: backend
// connection lost").
namespace smtpgate::smtp::replies {

inline constexpr std::string_view kOk = "250 2.0.0 Ok";
inline constexpr std::string_view kMailOk = "250 2.1.0 Ok";
inline constexpr std::string_view kRcptOk = "250 2.1.5 Ok";
inline constexpr std::string_view kStartData = "354 End data with <CR><LF>.<CR><LF>";
inline constexpr std::string_view kBye = "221 2.0.0 Bye";
inline constexpr std::string_view kHelp = "214 2.0.0 See RFC 5321";
inline constexpr std::string_view kReadyTls = "220 2.0.0 Ready to start TLS";
inline constexpr std::string_view kAuthOk = "235 2.7.0 Authentication successful";
inline constexpr std::string_view kAuthPlainChallenge = "334 ";
inline constexpr std::string_view kAuthLoginUser = "334 VXNlcm5hbWU6";      // "Username:"
inline constexpr std::string_view kAuthLoginPassword = "334 UGFzc3dvcmQ6";  // "Password:"

inline constexpr std::string_view kLineTooLong = "500 5.5.6 Line too long";
inline constexpr std::string_view kUnknownCommand = "500 5.5.2 Error: command not recognized";
inline constexpr std::string_view kBareCrInCommand = "501 5.5.2 Syntax error: bare <CR> received";
inline constexpr std::string_view kEhloSyntax = "501 5.5.4 Syntax: EHLO hostname";
inline constexpr std::string_view kHeloSyntax = "501 5.5.4 Syntax: HELO hostname";
inline constexpr std::string_view kStartTlsSyntax = "501 5.5.4 Syntax: STARTTLS";
inline constexpr std::string_view kMailSyntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
inline constexpr std::string_view kRcptSyntax = "501 5.5.4 Syntax: RCPT TO:<address>";
inline constexpr std::string_view kDataSyntax = "501 5.5.4 Syntax: DATA";
inline constexpr std::string_view kAuthSyntax = "501 5.5.4 Syntax: AUTH mechanism";
inline constexpr std::string_view kBadSender = "501 5.1.7 Bad sender address syntax";
inline constexpr std::string_view kBadRecipient = "501 5.1.3 Bad recipient address syntax";
inline constexpr std::string_view kAuthAborted = "501 5.7.0 Authentication aborted";
inline constexpr std::string_view kAuthCannotDecode = "501 5.5.2 Cannot decode response";
inline constexpr std::string_view kVrfyDisabled = "502 5.5.1 VRFY command is disabled";
inline constexpr std::string_view kExpnDisabled = "502 5.5.1 EXPN command is disabled";
inline constexpr std::string_view kNotImplemented = "502 5.5.1 Error: command not implemented";
inline constexpr std::string_view kSendHeloFirst = "503 5.5.1 Error: send HELO/EHLO first";
inline constexpr std::string_view kTlsActive = "503 5.5.1 Error: TLS already active";
inline constexpr std::string_view kNestedMail = "503 5.5.1 Error: nested MAIL command";
inline constexpr std::string_view kNeedMail = "503 5.5.1 Error: need MAIL command";
inline constexpr std::string_view kNeedRcpt = "503 5.5.1 Error: need RCPT command";
inline constexpr std::string_view kAlreadyAuthenticated = "503 5.5.1 Error: already authenticated";
inline constexpr std::string_view kAuthInTransaction =
    "503 5.5.1 Error: MAIL transaction in progress";
inline constexpr std::string_view kAuthNotEnabled = "503 5.5.1 Error: authentication not enabled";
inline constexpr std::string_view kAuthUnknownMechanism =
    "504 5.5.4 Unrecognized authentication type";
inline constexpr std::string_view kMustStartTls = "530 5.7.0 Must issue a STARTTLS command first";
inline constexpr std::string_view kAuthFailed = "535 5.7.8 Error: authentication failed";
inline constexpr std::string_view kBareLineEnd = "550 5.5.2 Error: bare <CR> or <LF> received";
inline constexpr std::string_view kTooBig = "552 5.3.4 Message size exceeds fixed limit";
inline constexpr std::string_view kNoValidRecipients = "554 5.5.1 Error: no valid recipients";
inline constexpr std::string_view kTooManyRecipients = "452 4.5.3 Error: too many recipients";
inline constexpr std::string_view kBadSizeParam = "501 5.5.4 Bad SIZE parameter syntax";
inline constexpr std::string_view kUnsupportedOption = "555 5.5.4 Unsupported option: ";  // + param
inline constexpr std::string_view kBadParam = "501 5.5.4 Bad parameter: ";                // + param
inline constexpr std::string_view kDeliveryFailed = "451 4.3.0 Error: delivery failed";
// Relay mode: the backend broke the AUTH exchange (an unexpected challenge).
inline constexpr std::string_view kAuthTemporaryFailure =
    "454 4.7.0 Temporary authentication failure";

}  // namespace smtpgate::smtp::replies
