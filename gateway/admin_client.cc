#include "gateway/admin_client.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace smtpgate {
namespace {

void onDone(evhttp_request* req, void* arg) {
  auto* answer = static_cast<AdminClient::Answer*>(arg);
  if (req == nullptr || evhttp_request_get_response_code(req) == 0) {
    if (answer->error.empty()) {
      answer->error = errno != 0 ? std::strerror(errno) : "no answer";
    }
    return;
  }
  answer->status = evhttp_request_get_response_code(req);
  evbuffer* in = evhttp_request_get_input_buffer(req);
  answer->body.resize(evbuffer_get_length(in));
  if (!answer->body.empty()) {
    evbuffer_copyout(in, answer->body.data(), answer->body.size());
  }
}

void onError(evhttp_request_error kind, void* arg) {
  auto* answer = static_cast<AdminClient::Answer*>(arg);
  int saved = errno;
  if (kind == EVREQ_HTTP_TIMEOUT) {
    answer->error = "timed out";
  } else {
    answer->error = saved != 0               ? std::strerror(saved)
                    : kind == EVREQ_HTTP_EOF ? "connection closed"
                                             : "HTTP error";
  }
}

}  // namespace

AdminClient::AdminClient(const ListenAddress& listen, std::string token, std::string actor)
    : token_(std::move(token)), actor_(std::move(actor)) {
  host_ = listen.host == "0.0.0.0" ? "127.0.0.1" : listen.host == "::" ? "::1" : listen.host;
  port_ = listen.port;
  hostHeader_ = host_.find(':') != std::string::npos ? fmt::format("[{}]:{}", host_, port_)
                                                     : fmt::format("{}:{}", host_, port_);
}

std::string AdminClient::encode(const std::string& text) {
  char* e = evhttp_uriencode(text.data(), static_cast<ev_ssize_t>(text.size()), 0);
  std::string out = e ? e : "";
  std::free(e);
  return out;
}

AdminClient::Answer AdminClient::request(evhttp_cmd_type method, const std::string& uri,
                                         const std::string& body) const {
  Answer answer;
  std::unique_ptr<event_base, decltype(&event_base_free)> base(event_base_new(), &event_base_free);
  if (!base) {
    answer.error = "cannot create an event base";
    return answer;
  }
  std::unique_ptr<evhttp_connection, decltype(&evhttp_connection_free)> conn(
      evhttp_connection_base_new(base.get(), nullptr, host_.c_str(), port_),
      &evhttp_connection_free);
  if (!conn) {
    answer.error = "cannot connect";
    return answer;
  }
  evhttp_connection_set_timeout(conn.get(), 30);
  evhttp_request* req = evhttp_request_new(&onDone, &answer);
  evhttp_request_set_error_cb(req, &onError);
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Host", hostHeader_.c_str());
  evhttp_add_header(headers, "Authorization", ("Bearer " + token_).c_str());
  evhttp_add_header(headers, "X-Smtpgate-Actor", actor_.c_str());
  evhttp_add_header(headers, "Accept", "application/json");
  evhttp_add_header(headers, "Connection", "close");
  if (!body.empty()) {
    evhttp_add_header(headers, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), body.data(), body.size());
  }
  errno = 0;
  if (evhttp_make_request(conn.get(), req, method, uri.c_str()) != 0) {
    answer.error = "cannot send the request";  // libevent has freed req
  } else {
    event_base_dispatch(base.get());
  }
  return answer;
}

}  // namespace smtpgate
