#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <string>

namespace smtpgate {

// Small libuv helpers shared by the client connection and the backend link.

// Writes `bytes` to `stream`; the buffer lives until libuv is done with it. `done(status, size)`
// runs from the write callback, except when the handle is being closed (UV_ECANCELED: then the
// owner may already be gone and only the buffer is freed — house rule 4). Returns uv_write's
// result: on an error nothing was queued and `done` never runs.
int writeOwned(uv_stream_t* stream, std::string bytes,
               std::function<void(int status, std::size_t size)> done);

// (Re)starts a one-shot timer for `seconds`; 0 stops it.
void armTimeout(uv_timer_t* timer, unsigned seconds, uv_timer_cb onTimeout);

}  // namespace smtpgate
