#pragma once

#include <cstdint>
#include <string>

#include "gateway/trace_record.h"

// The text forms of trace records shared by the trace store and its JSON-lines stream.
namespace smtpgate::trace_jsonl {

// Appends one JSON object and a newline: {"type": "session", <every field under its column
// name>, "time": ISO of started_ms}. Client-controlled strings that are not valid UTF-8 get
// U+FFFD instead of failing the whole line.
void appendLine(std::string& out, const SessionTrace& trace);
// The same for a message: {"type": "message", ..., "time": ISO of received_ms}.
void appendLine(std::string& out, const MessageTrace& trace);

}  // namespace smtpgate::trace_jsonl
