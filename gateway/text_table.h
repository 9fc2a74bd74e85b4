#pragma once

#include <string>
#include <vector>

namespace smtpgate {

using TextRow = std::vector<std::string>;

// Columns separated by two spaces, under a header row; `numeric[i]` columns are right-aligned
// (missing entries: left-aligned). Widths count UTF-8 characters. No trailing blanks.
std::string renderTable(const TextRow& header, const std::vector<TextRow>& rows,
                        const std::vector<bool>& numeric = {});

}  // namespace smtpgate
