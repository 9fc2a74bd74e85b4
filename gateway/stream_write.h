#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <string>

namespace smtpgate {

// Small libuv helpers shared by the client connection and the backend link.

// Writes `bytes` to `stream`. When nothing is queued before them, as much as the socket takes
// goes out at once (uv_try_write: no request, no callback, no epoll change afterwards); the
// rest is queued with uv_write in a buffer that lives until libuv is done with it. `queued`
// says how many bytes were queued (0: all written now). `done(status, size)` runs from the
// write callback of a queued rest only, except when the handle is being closed (UV_ECANCELED:
// then the owner may already be gone and only the buffer is freed — house rule 4). Returns 0
// or a libuv error: then nothing more was queued and `done` never runs.
int writeOwned(uv_stream_t* stream, std::string bytes,
               std::function<void(int status, std::size_t size)> done, std::size_t& queued);

// (Re)starts a one-shot timer for `seconds`; 0 stops it.
void armTimeout(uv_timer_t* timer, unsigned seconds, uv_timer_cb onTimeout);

}  // namespace smtpgate
