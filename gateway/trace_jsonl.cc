#include "gateway/trace_jsonl.h"

#include "gateway/time_format.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace smtpgate::trace_jsonl {

namespace {

// Key order as in the table, so that a line reads like a row.
using Json = nlohmann::ordered_json;

void appendJson(std::string& out, const Json& object) {
  out += object.dump(-1, ' ', false, Json::error_handler_t::replace);
  out += '\n';
}

}  // namespace

void appendLine(std::string& out, const SessionTrace& t) {
  Json j;
  j["type"] = "session";
  j["session_id"] = t.sessionId;
  j["started_ms"] = t.startedMs;
  j["ended_ms"] = t.endedMs;
  j["day"] = utcDay(t.startedMs);
  j["listener"] = t.listener;
  j["endpoint"] = t.endpoint;
  j["client_ip"] = t.clientIp;
  j["client_port"] = t.clientPort;
  j["sni"] = t.sni;
  j["ehlo"] = t.ehlo;
  j["tls_version"] = t.tlsVersion;
  j["tls_cipher"] = t.tlsCipher;
  j["tls_max_offered"] = t.tlsMaxOffered;
  j["auth_user"] = t.authUser;
  j["tenant"] = t.tenant;
  j["rule"] = t.rule;
  j["final_reply"] = t.finalReply;
  j["messages"] = t.messages;
  j["time"] = isoUtcMillis(t.startedMs);
  appendJson(out, j);
}

void appendLine(std::string& out, const MessageTrace& t) {
  Json j;
  j["type"] = "message";
  j["session_id"] = t.sessionId;
  j["received_ms"] = t.receivedMs;
  j["day"] = utcDay(t.receivedMs);
  j["listener"] = t.listener;
  j["endpoint"] = t.endpoint;
  j["client_ip"] = t.clientIp;
  j["ehlo"] = t.ehlo;
  j["tls_version"] = t.tlsVersion;
  j["tls_cipher"] = t.tlsCipher;
  j["auth_user"] = t.authUser;
  j["tenant"] = t.tenant;
  j["sender"] = t.sender;
  j["rcpt_count"] = t.rcptCount;
  j["size"] = t.size;
  j["rule"] = t.rule;
  j["reply"] = t.reply;
  j["queue_id"] = t.queueId;
  j["time"] = isoUtcMillis(t.receivedMs);
  appendJson(out, j);
}

}  // namespace smtpgate::trace_jsonl
