#include "gateway/smtp/capabilities.h"

#include <algorithm>
#include <array>
#include <optional>

namespace smtpgate::smtp {

namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return out;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') {
      x = static_cast<char>(x - 'a' + 'A');
    }
    if (y >= 'a' && y <= 'z') {
      y = static_cast<char>(y - 'a' + 'A');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

const Capability* find(const Capabilities& caps, std::string_view keyword) {
  for (const Capability& cap : caps) {
    if (equalsNoCase(cap.keyword, keyword)) {
      return &cap;
    }
  }
  return nullptr;
}

// A SIZE parameter (RFC 1870 §4): digits only; nullopt when absent, malformed or too large
// to matter (anything that does not fit is above every limit of ours).
std::optional<std::uint64_t> sizeParam(const Capability& cap) {
  if (cap.params.empty()) {
    return std::nullopt;
  }
  const std::string& text = cap.params.front();
  if (text.empty() || text.size() > 19) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

std::string sizeLine(const Capability& cap, std::uint64_t ours) {
  const std::optional<std::uint64_t> theirs = sizeParam(cap);
  if (ours == 0) {
    // No limit of ours: the backend's, or none if it did not give a valid one.
    return theirs ? "SIZE " + std::to_string(*theirs) : std::string("SIZE");
  }
  // SIZE 0 and a bare SIZE mean "no fixed limit" upstream, but the gateway has one.
  if (!theirs || *theirs == 0 || *theirs > ours) {
    return "SIZE " + std::to_string(ours);
  }
  return "SIZE " + std::to_string(*theirs);
}

// Relayed as announced: the session passes their parameters through to the backend.
constexpr std::array<std::string_view, 5> kPassThrough = {"PIPELINING", "8BITMIME",
                                                          "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8"};

}  // namespace

std::string Capability::line() const {
  std::string out = keyword;
  for (const std::string& param : params) {
    out += ' ';
    out += param;
  }
  return out;
}

Capabilities parseEhlo(const Reply& reply) {
  Capabilities caps;
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    std::string_view text = reply.lines[i];
    std::vector<std::string> words;
    while (!text.empty()) {
      const std::size_t start = text.find_first_not_of(" \t");
      if (start == std::string_view::npos) {
        break;
      }
      text.remove_prefix(start);
      const std::size_t end = std::min(text.find_first_of(" \t"), text.size());
      words.emplace_back(text.substr(0, end));
      text.remove_prefix(end);
    }
    if (words.empty()) {
      continue;
    }
    Capability cap;
    cap.keyword = upper(words.front());
    if (find(caps, cap.keyword) != nullptr) {
      continue;
    }
    cap.params.assign(words.begin() + 1, words.end());
    caps.push_back(std::move(cap));
  }
  return caps;
}

std::vector<std::string> filterForClients(const Capabilities& caps, std::uint64_t maxMessageBytes,
                                          bool relayBdat) {
  std::vector<std::string> out;
  bool sizeSeen = false;
  for (const Capability& cap : caps) {
    const std::string& k = cap.keyword;
    if (k == "SIZE") {
      sizeSeen = true;
      out.push_back(sizeLine(cap, maxMessageBytes));
    } else if (k == "AUTH") {
      if (cap.params.empty()) {
        continue;
      }
      // Only the mechanisms the session can relay (it reads the identity for the TLS
      // decision from each): announcing CRAM-MD5 and the like would promise what fails.
      Capability auth{k, {}};
      for (const std::string& mechanism : cap.params) {
        std::string m = upper(mechanism);
        if (m == "PLAIN" || m == "LOGIN" || m == "XOAUTH2") {
          auth.params.push_back(m);
        }
      }
      if (!auth.params.empty()) {
        out.push_back(auth.line());
      }
    } else if (k == "CHUNKING" || k == "BINARYMIME") {
      if (relayBdat) {
        out.push_back(cap.line());
      }
    } else if (std::find(kPassThrough.begin(), kPassThrough.end(), k) != kPassThrough.end()) {
      out.push_back(cap.line());
    }
  }
  // The gateway enforces its limit in any case (552 5.3.4): say so, as RFC 1870 asks.
  if (!sizeSeen && maxMessageBytes != 0) {
    out.push_back("SIZE " + std::to_string(maxMessageBytes));
  }
  return out;
}

bool has(const Capabilities& caps, std::string_view keyword) {
  return find(caps, keyword) != nullptr;
}

bool offersAuth(const Capabilities& caps, std::string_view mechanism) {
  const Capability* auth = find(caps, "AUTH");
  if (auth == nullptr) {
    return false;
  }
  return std::any_of(auth->params.begin(), auth->params.end(),
                     [&](const std::string& p) { return equalsNoCase(p, mechanism); });
}

std::vector<std::string> xclientAttributes(const Capabilities& caps) {
  std::vector<std::string> out;
  if (const Capability* xclient = find(caps, "XCLIENT")) {
    for (const std::string& attribute : xclient->params) {
      out.push_back(upper(attribute));
    }
  }
  return out;
}

}  // namespace smtpgate::smtp
