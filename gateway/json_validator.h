#pragma once

// A small schema-style validator for JSON configuration documents. Every problem becomes a
// ConfigError with the RFC 6901 pointer of the offending value; validation never stops at the
// first problem, and objects are visited in document order so errors come out in that order.
//
//   ObjectSchema smtp;
//   smtp.field("max_recipients", integer(config.smtp.maxRecipients, 1, 10000))
//       .field("bare_lf", oneOf(config.smtp.bareLfReject, {{"normalize", false}, {"reject",
//       true}}));
//   smtp.apply(node);

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/config.h"

namespace smtpgate::json_schema {

// Object members keep document order, so that errors are reported in document order.
using Json = nlohmann::ordered_json;

// "a/b~c" -> "a~1b~0c" (RFC 6901).
std::string escapePointerToken(std::string_view token);

// Where errors go, plus the pointers of keys that occurred twice in one object (the JSON parser
// keeps only the last value; we report the repetition instead of letting it pass silently).
struct Context {
  std::vector<ConfigError>& errors;
  std::set<std::string> duplicateKeys;
};

// Parses `text` into `out`, recording duplicate keys in `context`. On invalid JSON, returns false
// and appends one error with an empty pointer: "invalid JSON at line 3, column 5: ...".
bool parseJson(const std::string& text, Json& out, Context& context);

// A value inside the document together with its pointer.
class Node {
 public:
  Node(const Json& value, std::string pointer, Context& context)
      : value_(&value), pointer_(std::move(pointer)), context_(&context) {}

  const Json& value() const { return *value_; }
  const std::string& pointer() const { return pointer_; }
  Context& context() const { return *context_; }
  Node member(std::string_view key) const;
  Node element(std::size_t index) const;
  void error(std::string message) const;

 private:
  const Json* value_;
  std::string pointer_;
  Context* context_;
};

// Typed readers: on a wrong type or range they record an error and return false (and leave
// `out` untouched).
bool readString(const Node& node, std::string& out);
bool readBool(const Node& node, bool& out);
bool readInteger(const Node& node, int64_t min, int64_t max, int64_t& out);
// Any JSON number, integer or not ("must be a number").
bool readNumber(const Node& node, double& out);
// An RFC 3339 time as Unix seconds ("must be an RFC 3339 time such as 2026-01-01T00:00:00Z").
bool readTimestamp(const Node& node, int64_t& out);

// Calls `fn` for each member of an object, in document order ("must be an object" otherwise).
bool forEachMember(const Node& node,
                   const std::function<void(const std::string& key, const Node& value)>& fn);
// Calls `fn` for each element of an array ("must be an array" otherwise).
bool forEachElement(const Node& node, const std::function<void(const Node& element)>& fn);

using Handler = std::function<void(const Node&)>;

// The keys an object may have. Unknown keys are errors ("unknown key"), so are keys reserved
// for features this version does not have ("not supported by this version").
class ObjectSchema {
 public:
  ObjectSchema& field(std::string key, Handler handler);
  ObjectSchema& required(std::string key, Handler handler);
  ObjectSchema& unsupported(std::string key, std::string message = "not supported by this version");
  // Validates `node`; returns false only when it is not an object at all.
  bool apply(const Node& node) const;

 private:
  struct Field {
    std::string key;
    Handler handler;  // empty for unsupported keys
    bool required = false;
    std::string unsupportedMessage;
  };
  const Field* find(const std::string& key) const;
  std::vector<Field> fields_;
};

// Handlers that store a checked value into a Config field.
Handler text(std::string& out);
Handler boolean(bool& out);

template <typename T>
Handler integer(T& out, int64_t min, int64_t max) {
  return [&out, min, max](const Node& node) {
    int64_t value = 0;
    if (readInteger(node, min, max, value)) {
      out = static_cast<T>(value);
    }
  };
}

// `must be "a" or "b"` / `must be "a", "b" or "c"` (the choices in the given order).
std::string choicesMessage(const std::vector<std::string>& names);

template <typename T>
Handler oneOf(T& out, std::vector<std::pair<std::string, T>> choices) {
  return [&out, choices = std::move(choices)](const Node& node) {
    const Json& value = node.value();
    std::vector<std::string> names;
    for (const auto& [name, choice] : choices) {
      if (value.is_string() && value.template get_ref<const std::string&>() == name) {
        out = choice;
        return;
      }
      names.push_back(name);
    }
    node.error(choicesMessage(names));
  };
}

// A file or directory path: a non-empty string (empty allowed when `allowEmpty`), resolved
// against `baseDir` when relative.
Handler path(std::string& out, const std::string& baseDir, bool allowEmpty = false);
std::string resolvePath(const std::string& value, const std::string& baseDir);

// Whole-file read; on failure `error` is "cannot read PATH: <strerror>".
bool readFile(const std::string& path, std::string& out, std::string& error);

// RFC 3339 date-time ("2026-01-01T00:00:00Z", "2026-01-01T02:00:00.5+02:00") to Unix seconds;
// fractional seconds are dropped. A date without a time or offset is not accepted.
bool parseRfc3339(std::string_view text, int64_t& out);
// A calendar date "YYYY-MM-DD" to the Unix seconds of its midnight UTC.
bool parseDate(std::string_view text, int64_t& out);
std::string formatRfc3339(int64_t unixSeconds);  // "2026-01-01T00:00:00Z"
std::string formatDate(int64_t unixSeconds);     // "2026-01-01" (the UTC day)

}  // namespace smtpgate::json_schema
