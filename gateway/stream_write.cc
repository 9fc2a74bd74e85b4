#include "gateway/stream_write.h"

namespace smtpgate {
namespace {

struct OwnedWrite {
  uv_write_t req;
  std::string data;
  std::function<void(int, std::size_t)> done;
};

void onWritten(uv_write_t* raw, int status) {
  auto* write = reinterpret_cast<OwnedWrite*>(raw);
  std::size_t size = write->data.size();
  auto done = std::move(write->done);
  delete write;
  if (status != UV_ECANCELED && done) {
    done(status, size);
  }
}

}  // namespace

int writeOwned(uv_stream_t* stream, std::string bytes,
               std::function<void(int status, std::size_t size)> done) {
  auto* write = new OwnedWrite{};
  write->data = std::move(bytes);
  write->done = std::move(done);
  uv_buf_t buf = uv_buf_init(write->data.data(), static_cast<unsigned>(write->data.size()));
  int rc = uv_write(&write->req, stream, &buf, 1, onWritten);
  if (rc != 0) {
    delete write;
  }
  return rc;
}

void armTimeout(uv_timer_t* timer, unsigned seconds, uv_timer_cb onTimeout) {
  if (seconds == 0) {
    uv_timer_stop(timer);
    return;
  }
  uv_timer_start(timer, onTimeout, static_cast<uint64_t>(seconds) * 1000, 0);
}

}  // namespace smtpgate
