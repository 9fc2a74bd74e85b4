#include "gateway/json_validator.h"

#include "gateway/time_format.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_set>

namespace smtpgate::json_schema {

std::string escapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// Turns nlohmann's "[json.exception.parse_error.101] parse error at line 3, column 5: ..." into
// "invalid JSON at line 3, column 5: ...".
std::string describeParseError(const nlohmann::json::parse_error& e) {
  std::string what = e.what();
  const std::string marker = "parse error ";
  auto at = what.find(marker);
  if (at != std::string::npos) {
    return "invalid JSON " + what.substr(at + marker.size());
  }
  return "invalid JSON: " + what;
}

}  // namespace

bool parseJson(const std::string& text, Json& out, Context& context) {
  // Configuration documents are a few levels deep; the pointer bookkeeping below costs
  // O(depth^2) time and memory, so deeper nesting is refused before parsing (fuzzing: 80 KB of
  // "[" took 25 s and 1.8 GB).
  constexpr std::size_t kMaxDepth = 64;
  std::size_t depth = 0;
  bool inString = false;
  bool escaped = false;
  for (char c : text) {
    if (inString) {
      escaped = !escaped && c == '\\';
      inString = escaped || c != '"';
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) {
        context.errors.push_back({"", "invalid JSON: nested deeper than 64 levels"});
        return false;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  // The parser callback sees every container start/end and every key, which is enough to know
  // the pointer of each key and to notice keys that occur twice in one object.
  struct Frame {
    bool object = false;
    std::string pointer;
    std::string key;
    std::size_t index = 0;
    std::unordered_set<std::string> keys;
  };
  std::vector<Frame> stack;
  auto childPointer = [&stack]() -> std::string {
    if (stack.empty()) {
      return "";
    }
    Frame& top = stack.back();
    if (top.object) {
      return top.pointer + "/" + escapePointerToken(top.key);
    }
    return top.pointer + "/" + std::to_string(top.index++);
  };
  auto& duplicates = context.duplicateKeys;
  Json::parser_callback_t callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start: {
        Frame frame;
        frame.object = event == Json::parse_event_t::object_start;
        frame.pointer = childPointer();
        stack.push_back(std::move(frame));
        break;
      }
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!stack.empty()) {
          stack.pop_back();
        }
        break;
      case Json::parse_event_t::key:
        if (!stack.empty() && parsed.is_string()) {
          Frame& top = stack.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second) {
            duplicates.insert(top.pointer + "/" + escapePointerToken(top.key));
          }
        }
        break;
      case Json::parse_event_t::value:
        if (!stack.empty() && !stack.back().object) {
          stack.back().index++;
        }
        break;
    }
    return true;
  };
  try {
    out = Json::parse(text, callback);
  } catch (const nlohmann::json::parse_error& e) {
    context.errors.push_back({"", describeParseError(e)});
    return false;
  } catch (const nlohmann::json::exception& e) {
    // out_of_range 406, a number such as 1e999: refused like any other invalid JSON.
    context.errors.push_back({"", std::string("invalid JSON: ") + e.what()});
    return false;
  }
  return true;
}

Node Node::member(std::string_view key) const {
  return Node(value_->at(std::string(key)), pointer_ + "/" + escapePointerToken(key), *context_);
}

Node Node::element(std::size_t index) const {
  return Node(value_->at(index), pointer_ + "/" + std::to_string(index), *context_);
}

void Node::error(std::string message) const {
  context_->errors.push_back({pointer_, std::move(message)});
}

bool readString(const Node& node, std::string& out) {
  if (!node.value().is_string()) {
    node.error("must be a string");
    return false;
  }
  out = node.value().get<std::string>();
  return true;
}

bool readBool(const Node& node, bool& out) {
  if (!node.value().is_boolean()) {
    node.error("must be true or false");
    return false;
  }
  out = node.value().get<bool>();
  return true;
}

bool readInteger(const Node& node, int64_t min, int64_t max, int64_t& out) {
  const Json& value = node.value();
  if (!value.is_number_integer()) {
    node.error("must be an integer");
    return false;
  }
  bool inRange = false;
  int64_t number = 0;
  if (value.is_number_unsigned()) {
    auto u = value.get<uint64_t>();
    inRange =
        max >= 0 && u <= static_cast<uint64_t>(max) && (min < 0 || u >= static_cast<uint64_t>(min));
    number = static_cast<int64_t>(u);
  } else {
    number = value.get<int64_t>();
    inRange = number >= min && number <= max;
  }
  if (!inRange) {
    node.error(fmt::format("must be {}..{}", min, max));
    return false;
  }
  out = number;
  return true;
}

bool readNumber(const Node& node, double& out) {
  if (!node.value().is_number()) {
    node.error("must be a number");
    return false;
  }
  out = node.value().get<double>();
  return true;
}

bool readTimestamp(const Node& node, int64_t& out) {
  const Json& value = node.value();
  if (!value.is_string() || !parseRfc3339(value.get_ref<const std::string&>(), out)) {
    node.error("must be an RFC 3339 time such as 2026-01-01T00:00:00Z");
    return false;
  }
  return true;
}

bool forEachMember(const Node& node,
                   const std::function<void(const std::string& key, const Node& value)>& fn) {
  if (!node.value().is_object()) {
    node.error("must be an object");
    return false;
  }
  for (const auto& [key, value] : node.value().items()) {
    Node child(value, node.pointer() + "/" + escapePointerToken(key), node.context());
    if (node.context().duplicateKeys.count(child.pointer()) != 0) {
      child.error("duplicate key");
    }
    fn(key, child);
  }
  return true;
}

bool forEachElement(const Node& node, const std::function<void(const Node& element)>& fn) {
  if (!node.value().is_array()) {
    node.error("must be an array");
    return false;
  }
  for (std::size_t i = 0; i < node.value().size(); ++i) {
    fn(node.element(i));
  }
  return true;
}

ObjectSchema& ObjectSchema::field(std::string key, Handler handler) {
  fields_.push_back(Field{std::move(key), std::move(handler), false, ""});
  return *this;
}

ObjectSchema& ObjectSchema::required(std::string key, Handler handler) {
  fields_.push_back(Field{std::move(key), std::move(handler), true, ""});
  return *this;
}

ObjectSchema& ObjectSchema::unsupported(std::string key, std::string message) {
  fields_.push_back(Field{std::move(key), Handler(), false, std::move(message)});
  return *this;
}

const ObjectSchema::Field* ObjectSchema::find(const std::string& key) const {
  for (const auto& field : fields_) {
    if (field.key == key) {
      return &field;
    }
  }
  return nullptr;
}

bool ObjectSchema::apply(const Node& node) const {
  bool isObject = forEachMember(node, [this](const std::string& key, const Node& value) {
    const Field* field = find(key);
    if (field == nullptr) {
      value.error("unknown key");
    } else if (!field->handler) {
      value.error(field->unsupportedMessage);
    } else {
      field->handler(value);
    }
  });
  if (!isObject) {
    return false;
  }
  for (const auto& field : fields_) {
    if (field.required && !node.value().contains(field.key)) {
      node.error(fmt::format("\"{}\" is required", field.key));
    }
  }
  return true;
}

Handler text(std::string& out) {
  return [&out](const Node& node) { readString(node, out); };
}

Handler boolean(bool& out) {
  return [&out](const Node& node) { readBool(node, out); };
}

std::string choicesMessage(const std::vector<std::string>& names) {
  std::string message = "must be ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) {
      message += i + 1 == names.size() ? " or " : ", ";
    }
    message += "\"" + names[i] + "\"";
  }
  return message;
}

std::string resolvePath(const std::string& value, const std::string& baseDir) {
  std::filesystem::path p(value);
  if (p.is_relative() && !baseDir.empty()) {
    p = std::filesystem::path(baseDir) / p;
  }
  return p.lexically_normal().string();
}

bool readFile(const std::string& path, std::string& out, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
      ::close(fd);
      return false;
    }
    if (n == 0) {
      break;
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's civil-day
// algorithms): no dependence on timegm(3) or the process time zone.
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Exactly `count` ASCII digits at `pos`.
bool readDigits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > text.size()) {
    return false;
  }
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

// "YYYY-MM-DD" at the start of `text`, a real calendar day; the days since the epoch.
bool parseDatePrefix(std::string_view text, int64_t& days) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (!readDigits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' ||
      !readDigits(text, 5, 2, month) || text[7] != '-' || !readDigits(text, 8, 2, day)) {
    return false;
  }
  static const int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) {
    return false;
  }
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  int maxDay = kDaysInMonth[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day > maxDay) {
    return false;
  }
  days = daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return true;
}

}  // namespace

bool parseDate(std::string_view text, int64_t& out) {
  int64_t days = 0;
  if (text.size() != 10 || !parseDatePrefix(text, days)) {
    return false;
  }
  out = days * 86400;
  return true;
}

bool parseRfc3339(std::string_view text, int64_t& out) {
  // date-time = full-date "T" partial-time time-offset (RFC 3339 section 5.6; "t" and "z" may
  // be lower-case per its note).
  int64_t days = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!parseDatePrefix(text, days) || text.size() < 20 || (text[10] != 'T' && text[10] != 't') ||
      !readDigits(text, 11, 2, hour) || text[13] != ':' || !readDigits(text, 14, 2, minute) ||
      text[16] != ':' || !readDigits(text, 17, 2, second)) {
    return false;
  }
  // Second 60 is a leap second; it counts as the first second of the next minute.
  if (hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  std::size_t pos = 19;
  if (text[pos] == '.') {
    std::size_t start = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      ++pos;
    }
    if (pos == start) {
      return false;
    }
  }
  int64_t offset = 0;
  if (pos + 1 == text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    offset = 0;
  } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int offsetHours = 0;
    int offsetMinutes = 0;
    if (!readDigits(text, pos + 1, 2, offsetHours) || text[pos + 3] != ':' ||
        !readDigits(text, pos + 4, 2, offsetMinutes) || offsetHours > 23 || offsetMinutes > 59) {
      return false;
    }
    offset = (offsetHours * 60 + offsetMinutes) * 60 * (text[pos] == '-' ? -1 : 1);
  } else {
    return false;
  }
  out = days * 86400 + hour * 3600 + minute * 60 + second - offset;
  return true;
}

std::string formatDate(int64_t unixSeconds) { return utcDay(unixSeconds * 1000); }

std::string formatRfc3339(int64_t unixSeconds) { return isoUtcSeconds(unixSeconds * 1000); }

Handler path(std::string& out, const std::string& baseDir, bool allowEmpty) {
  return [&out, baseDir, allowEmpty](const Node& node) {
    std::string value;
    if (!readString(node, value)) {
      return;
    }
    if (value.empty()) {
      if (!allowEmpty) {
        node.error("must not be empty");
      } else {
        out.clear();
      }
      return;
    }
    if (value.find('\0') != std::string::npos) {
      node.error("must not contain NUL characters");
      return;
    }
    out = resolvePath(value, baseDir);
  };
}

}  // namespace smtpgate::json_schema
