#include "gateway/json_validator.h"

#include <fmt/format.h>

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
