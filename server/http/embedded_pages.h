// Web pages the server serves, embedded at build time from this folder's .html files (see
// CMakeLists.txt), so the binary needs no files beside it.
#pragma once

#include <string_view>

namespace sluice::http {

// GET /admin: the status page (its data comes from /admin/status.json).
[[nodiscard]] std::string_view admin_page_html();
// GET /demo (server.demo_page): two users' clients of the deploy/demo schema over WebSocket.
[[nodiscard]] std::string_view demo_page_html();

}  // namespace sluice::http
