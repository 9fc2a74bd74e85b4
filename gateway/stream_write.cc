#include "gateway/stream_write.h"

namespace smtpgate {
namespace {

struct OwnedWrite {
  uv_write_t req;
  std::string data;
  std::size_t offset = 0;  // what uv_try_write sent already
  std::function<void(int, std::size_t)> done;
};

void onWritten(uv_write_t* raw, int status) {
  auto* write = reinterpret_cast<OwnedWrite*>(raw);
  std::size_t size = write->data.size() - write->offset;
  auto done = std::move(write->done);
  delete write;
  if (status != UV_ECANCELED && done) {
    done(status, size);
  }
}

}  // namespace

int writeOwned(uv_stream_t* stream, std::string bytes,
               std::function<void(int status, std::size_t size)> done, std::size_t& queued) {
  queued = 0;
  std::size_t offset = 0;
  if (uv_stream_get_write_queue_size(stream) == 0) {
    // uv_try_write refuses (UV_EAGAIN) while earlier writes are queued: order is kept.
    uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
      return n;
    }
    if (n > 0) {
      offset = static_cast<std::size_t>(n);
    }
    if (offset == bytes.size()) {
      return 0;
    }
  }
  auto* write = new OwnedWrite{};
  write->data = std::move(bytes);
  write->offset = offset;
  write->done = std::move(done);
  uv_buf_t buf = uv_buf_init(write->data.data() + offset,
                             static_cast<unsigned>(write->data.size() - offset));
  int rc = uv_write(&write->req, stream, &buf, 1, onWritten);
  if (rc != 0) {
    delete write;
    return rc;
  }
  queued = write->data.size() - offset;
  return 0;
}

void armTimeout(uv_timer_t* timer, unsigned seconds, uv_timer_cb onTimeout) {
  if (seconds == 0) {
    uv_timer_stop(timer);
    return;
  }
  uv_timer_start(timer, onTimeout, static_cast<uint64_t>(seconds) * 1000, 0);
}

}  // namespace smtpgate
