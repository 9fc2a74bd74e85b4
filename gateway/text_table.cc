// Plain-text tables for the command line (gateway/text_table.h).

#include "gateway/text_table.h"

#include <fmt/format.h>

#include <algorithm>

namespace smtpgate {

namespace {

std::size_t displayWidth(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    n += (c & 0xc0) != 0x80;  // count UTF-8 lead bytes, not continuation bytes
  }
  return n;
}

}  // namespace

std::string renderTable(const TextRow& header, const std::vector<TextRow>& rows,
                        const std::vector<bool>& numeric) {
  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&](const TextRow& r) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (std::size_t i = 0; i < r.size(); ++i) {
      width[i] = std::max(width[i], displayWidth(r[i]));
    }
  };
  measure(header);
  for (const auto& r : rows) {
    measure(r);
  }
  auto line = [&](const TextRow& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::string pad(width[i] - displayWidth(r[i]), ' ');
      if (i) {
        out += "  ";
      }
      if (i < numeric.size() && numeric[i]) {
        out += pad + r[i];
      } else if (i + 1 < r.size()) {
        out += r[i] + pad;
      } else {
        out += r[i];
      }
    }
    while (!out.empty() && out.back() == ' ') {
      out.pop_back();
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) {
    out += line(r);
  }
  return out;
}

}  // namespace smtpgate
