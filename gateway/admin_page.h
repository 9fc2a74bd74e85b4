#pragma once

// The static assets of the admin report page (`GET /`, `GET /assets/NAME`): the files of
// gateway/admin_assets/, embedded in the binary at build time by cmake/EmbedAssets.cmake.

#include <cstddef>
#include <string_view>

namespace smtpgate {

struct AdminAsset {
  std::string_view contentType;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

// "/" and "/index.html" -> index.html; "/assets/NAME" -> the embedded file NAME (app.js,
// app.css, ...); nullptr for every other path. The result lives as long as the program.
const AdminAsset* findAdminAsset(std::string_view path);

// One embedded file, as the generated source (build/gateway/admin_assets_embedded.cc) lists
// them: smtpgate::assets::kAdminAssetFiles[0 .. kAdminAssetFiles_count).
struct EmbeddedFile {
  const char* name;  // file name without directory: "app.js"
  const unsigned char* data;  // `size` bytes (followed by a NUL)
  std::size_t size;
};

}  // namespace smtpgate
