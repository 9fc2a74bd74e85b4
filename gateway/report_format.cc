// The table and CSV renderings of a report (gateway/report.h).

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/log.h"
#include "gateway/report.h"
#include "gateway/text_table.h"

namespace smtpgate {
namespace {

using Json = nlohmann::ordered_json;
using Row = TextRow;

// RFC 4180 quoting. A field that a spreadsheet would run as a formula (=, +, -, @, TAB, CR first:
// an EHLO name or sender is client-supplied) gets a leading apostrophe, the usual defence.
std::string csvField(const std::string& field) {
  const bool formula =
      !field.empty() && std::string_view("=+-@\t\r").find(field[0]) != std::string_view::npos;
  const std::string s = formula ? "'" + field : field;
  if (!formula && s.find_first_of(",\"\r\n") == std::string::npos) {
    return s;
  }
  std::string out = "\"";
  for (char c : s) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

std::string renderCsv(const Row& header, const std::vector<Row>& rows) {
  auto line = [](const Row& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size(); ++i) {
      out += (i ? "," : "") + csvField(r[i]);
    }
    return out + "\r\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) {
    out += line(r);
  }
  return out;
}

std::string number(const Json& j, const std::string& key) {
  return std::to_string(j.is_object() ? j.value(key, int64_t{0}) : int64_t{0});
}

std::string orDash(const std::string& s) { return s.empty() ? "-" : log::escapeControls(s); }

Row dayHeader() {
  Row h{"date"};
  for (const auto& v : reportVersions()) {
    h.push_back(v);
  }
  h.push_back("all");
  return h;
}

Row dayRow(const std::string& label, const Json& row) {
  Row r{label};
  for (const auto& v : reportVersions()) {
    r.push_back(number(row, v));
  }
  r.push_back(number(row, "all"));
  return r;
}

Row clientHeader() {
  Row h{"client_ip", "ehlo", "auth_user", "tenant", "endpoint"};
  for (const auto& v : reportVersions()) {
    h.push_back(v);
  }
  for (const char* k : {"messages", "first_seen", "last_seen", "last_rule"}) {
    h.push_back(k);
  }
  return h;
}

Row clientRow(const Json& c, bool forTable) {
  auto text = [&](const char* key) {
    std::string s = c.value(key, std::string());
    return forTable ? orDash(s) : s;
  };
  Row r{text("client_ip"), text("ehlo"), text("auth_user"), text("tenant"), text("endpoint")};
  for (const auto& v : reportVersions()) {
    r.push_back(number(c.value("versions", Json::object()), v));
  }
  r.push_back(number(c, "messages"));
  r.push_back(text("first_seen"));
  r.push_back(text("last_seen"));
  r.push_back(text("last_rule"));
  return r;
}

Row senderHeader() {
  Row h{"sender", "messages"};
  for (const auto& v : reportVersions()) {
    h.push_back(v);
  }
  h.push_back("last_seen");
  return h;
}

Row senderRow(const Json& s, bool forTable) {
  std::string sender = s.value("sender", std::string());
  Row r{forTable ? (sender.empty() ? "<>" : log::escapeControls(sender)) : sender,
        number(s, "messages")};
  for (const auto& v : reportVersions()) {
    r.push_back(number(s.value("versions", Json::object()), v));
  }
  r.push_back(s.value("last_seen", std::string()));
  return r;
}

Row messageHeader() {
  return {"time",     "client_ip",   "ehlo",       "auth_user", "tenant",
          "endpoint", "tls_version", "tls_cipher", "sender",    "rcpt_count",
          "size",     "queue_id",    "session_id"};
}

Row messageRow(const Json& m, bool forTable) {
  Row r;
  for (const auto& key : messageHeader()) {
    const Json& v = m.contains(key) ? m[key] : Json();
    std::string s = v.is_number()   ? std::to_string(v.get<int64_t>())
                    : v.is_string() ? v.get<std::string>()
                                    : std::string();
    r.push_back(forTable ? (key == "sender" && s.empty() ? "<>" : orDash(s)) : s);
  }
  return r;
}

const Json& listOf(const Json& report, const char* key) {
  static const Json empty = Json::array();
  return report.is_object() && report.contains(key) && report[key].is_array() ? report[key] : empty;
}

std::vector<bool> numericColumns(const Row& header, const std::vector<std::string>& numbers) {
  std::vector<bool> out;
  for (const auto& h : header) {
    out.push_back(std::find(numbers.begin(), numbers.end(), h) != numbers.end());
  }
  return out;
}

std::vector<std::string> countColumns() {
  std::vector<std::string> out = reportVersions();
  out.push_back("all");
  out.push_back("messages");
  return out;
}

}  // namespace

std::string formatTable(const nlohmann::ordered_json& report, ReportQuery::By by) {
  std::vector<Row> rows;
  switch (by) {
    case ReportQuery::By::Client: {
      Row header = clientHeader();
      for (const auto& c : listOf(report, "clients")) {
        rows.push_back(clientRow(c, true));
      }
      return renderTable(header, rows, numericColumns(header, countColumns()));
    }
    case ReportQuery::By::Sender: {
      Row header = senderHeader();
      for (const auto& s : listOf(report, "senders")) {
        rows.push_back(senderRow(s, true));
      }
      return renderTable(header, rows, numericColumns(header, countColumns()));
    }
    case ReportQuery::By::Message: {
      Row header = messageHeader();
      for (const auto& m : listOf(report, "messages")) {
        rows.push_back(messageRow(m, true));
      }
      return renderTable(header, rows, numericColumns(header, {"rcpt_count", "size"}));
    }
    case ReportQuery::By::Day:
      break;
  }
  Row header = dayHeader();
  for (const auto& d : listOf(report, "days")) {
    rows.push_back(dayRow(d.value("date", std::string()), d));
  }
  const Json totals = report.is_object() ? report.value("totals", Json::object()) : Json::object();
  Row total = dayRow("TOTAL", totals);
  const Json percent = totals.value("percent", Json::object());
  for (std::size_t i = 0; i < reportVersions().size(); ++i) {
    total[i + 1] += fmt::format(" ({:.1f}%)", percent.value(reportVersions()[i], 0.0));
  }
  rows.push_back(std::move(total));
  std::vector<bool> numeric(header.size(), true);
  numeric[0] = false;
  std::string out = renderTable(header, rows, numeric);
  const Json decisions = totals.value("decisions", Json::object());
  if (!decisions.empty()) {
    std::string line = "refused sessions:";
    for (const auto& [rule, count] : decisions.items()) {
      line += fmt::format(" {} {},", rule, count.get<int64_t>());
    }
    line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string formatCsv(const nlohmann::ordered_json& report, ReportQuery::By by) {
  std::vector<Row> rows;
  switch (by) {
    case ReportQuery::By::Client:
      for (const auto& c : listOf(report, "clients")) {
        rows.push_back(clientRow(c, false));
      }
      return renderCsv(clientHeader(), rows);
    case ReportQuery::By::Sender:
      for (const auto& s : listOf(report, "senders")) {
        rows.push_back(senderRow(s, false));
      }
      return renderCsv(senderHeader(), rows);
    case ReportQuery::By::Message:
      for (const auto& m : listOf(report, "messages")) {
        rows.push_back(messageRow(m, false));
      }
      return renderCsv(messageHeader(), rows);
    case ReportQuery::By::Day:
      break;
  }
  for (const auto& d : listOf(report, "days")) {
    rows.push_back(dayRow(d.value("date", std::string()), d));
  }
  return renderCsv(dayHeader(), rows);
}

}  // namespace smtpgate
