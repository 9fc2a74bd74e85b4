#include "gateway/admin_page.h"

#include <map>
#include <string>

namespace smtpgate::assets {
// Defined by the generated source (cmake/EmbedAssets.cmake).
extern const EmbeddedFile kAdminAssetFiles[];
extern const std::size_t kAdminAssetFiles_count;
}  // namespace smtpgate::assets

namespace smtpgate {
namespace {

std::string_view contentTypeOf(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "json") return "application/json";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

const std::map<std::string, AdminAsset, std::less<>>& assetTable() {
  static const auto table = [] {
    std::map<std::string, AdminAsset, std::less<>> t;
    for (std::size_t i = 0; i < assets::kAdminAssetFiles_count; ++i) {
      const EmbeddedFile& f = assets::kAdminAssetFiles[i];
      t.emplace(f.name, AdminAsset{contentTypeOf(f.name),
                                    std::string_view(reinterpret_cast<const char*>(f.data), f.size)});
    }
    return t;
  }();
  return table;
}

}  // namespace

const AdminAsset* findAdminAsset(std::string_view path) {
  std::string_view name;
  if (path == "/" || path == "/index.html") {
    name = "index.html";
  } else if (path.starts_with("/assets/")) {
    name = path.substr(8);
    // Flat names only: no directories, no dot files ("..", ".hidden").
    if (name.empty() || name.find('/') != std::string_view::npos || name.front() == '.') return nullptr;
  } else {
    return nullptr;
  }
  const auto& table = assetTable();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace smtpgate
