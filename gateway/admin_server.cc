#include "gateway/admin_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <openssl/mem.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <nlohmann/json.hpp>

#include "gateway/log.h"

namespace smtpgate {

AdminResponse AdminResponse::error(int status, const std::string& message) {
  AdminResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace) +
           "\n";
  return r;
}

AdminResponse AdminResponse::json(const std::string& body, int status) {
  AdminResponse r;
  r.status = status;
  r.body = body;
  return r;
}

namespace {

const char* methodName(evhttp_cmd_type command) {
  switch (command) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    default:
      return "OTHER";
  }
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

// The X-Smtpgate-Actor header goes into the audit trail: printable ASCII only, and short enough
// that the peer address appended after it always fits the trail's bound.
std::string cleanActor(const char* header) {
  std::string out;
  for (const char* p = header; p && *p && out.size() < 120; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  return out;
}

void sendReply(evhttp_request* request, const AdminResponse& res) {
  evkeyvalq* out = evhttp_request_get_output_headers(request);
  evhttp_add_header(out, "Content-Type", res.contentType.c_str());
  evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
  evhttp_add_header(out, "X-Frame-Options", "DENY");
  evhttp_add_header(out, "Referrer-Policy", "no-referrer");
  evhttp_add_header(out, "Content-Security-Policy",
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                    "frame-ancestors 'none'");
  if (res.headers.find("Cache-Control") == res.headers.end()) {
    evhttp_add_header(out, "Cache-Control", "no-store");
  }
  for (const auto& [name, value] : res.headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
  evbuffer* buffer = evbuffer_new();
  evbuffer_add(buffer, res.body.data(), res.body.size());
  // A connection that failed meanwhile: libevent detached the request, and frees it here.
  evhttp_send_reply(request, res.status, reasonPhrase(res.status), buffer);
  evbuffer_free(buffer);
}

std::string peerOf(evhttp_request* request) {
  evhttp_connection* connection = evhttp_request_get_connection(request);
  if (!connection) {
    return "?";
  }
  char* address = nullptr;
  ev_uint16_t port = 0;
  evhttp_connection_get_peer(connection, &address, &port);
  return address ? address : "?";
}

}  // namespace

struct AdminServer::Job {
  evhttp_request* request;
  AdminRequest req;
  AdminResponse res;
};

AdminServer::AdminServer(ListenAddress listen, std::string token, Handler handler)
    : listen_(std::move(listen)), handler_(std::move(handler)), token_(std::move(token)) {}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::isPublic(const std::string& method, const std::string& path) {
  if (method != "GET" && method != "HEAD") {
    return false;
  }
  return path == "/healthz" || path == "/" || path == "/index.html" ||
         path.rfind("/assets/", 0) == 0;
}

std::string AdminServer::start() {
  static std::once_flag threads;
  std::call_once(threads, [] { evthread_use_pthreads(); });
  base_ = event_base_new();
  http_ = base_ ? evhttp_new(base_) : nullptr;
  if (!http_) {
    return "admin: cannot create the HTTP server";
  }
  evhttp_set_max_body_size(http_, kMaxBodyBytes);
  evhttp_set_max_headers_size(http_, kMaxHeaderBytes);
  evhttp_set_timeout(http_, kTimeoutS);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                        EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
  evhttp_set_gencb(http_, onRequest, this);
  evhttp_bound_socket* bound =
      evhttp_bind_socket_with_handle(http_, listen_.host.c_str(), listen_.port);
  if (!bound) {
    int e = errno;
    return fmt::format("admin: cannot listen on {}: {}", listen_.str(),
                       e ? std::strerror(e) : "bind failed");
  }
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&address),
                  &length) == 0) {
    boundPort_ =
        ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  }
  jobsDone_ = event_new(base_, -1, 0, onJobsDone, this);
  if (!jobsDone_) {
    return "admin: cannot create the reply event";
  }
  handlerThread_ = std::thread([this] { runHandlerThread(); });
  thread_ = std::thread([this] { event_base_dispatch(base_); });
  return "";
}

void AdminServer::stop() {
  if (thread_.joinable()) {
    // loopexit, not loopbreak: it also ends a loop that has not started dispatching yet.
    event_base_loopexit(base_, nullptr);
    thread_.join();
  }
  {
    std::lock_guard<std::mutex> lock(jobsMutex_);
    stopping_ = true;
  }
  jobsReady_.notify_all();
  if (handlerThread_.joinable()) {
    handlerThread_.join();
  }
  // Unanswered. A request whose connection failed meanwhile (libevent's read timeout, kTimeoutS,
  // while the handler was at work) was detached from it and waits for our reply to be freed:
  // freed here. The others go with their connections in evhttp_free().
  for (auto* jobs : {&todo_, &done_}) {
    for (const auto& job : *jobs) {
      if (evhttp_request_get_connection(job->request) == nullptr) {
        evhttp_request_free(job->request);
      }
    }
    jobs->clear();
  }
  if (jobsDone_) {
    event_free(jobsDone_);
    jobsDone_ = nullptr;
  }
  if (http_) {
    evhttp_free(http_);
    http_ = nullptr;
  }
  if (base_) {
    event_base_free(base_);
    base_ = nullptr;
  }
}

void AdminServer::setToken(std::string token) {
  std::lock_guard<std::mutex> lock(tokenMutex_);
  token_ = std::move(token);
}

bool AdminServer::authorized(const char* header) {
  static constexpr std::string_view kBearer = "bearer ";  // the scheme is case-insensitive
  if (!header || strncasecmp(header, kBearer.data(), kBearer.size()) != 0) {
    return false;
  }
  std::string_view given(header + kBearer.size());
  std::lock_guard<std::mutex> lock(tokenMutex_);
  return !token_.empty() && given.size() == token_.size() &&
         CRYPTO_memcmp(given.data(), token_.data(), token_.size()) == 0;
}

void AdminServer::onRequest(evhttp_request* request, void* arg) {
  static_cast<AdminServer*>(arg)->serve(request);
}

void AdminServer::onJobsDone(int, short, void* arg) { static_cast<AdminServer*>(arg)->sendReplies(); }

AdminResponse AdminServer::handle(const AdminRequest& req) {
  AdminResponse res;
  try {
    res = handler_(req);
  } catch (const std::exception& e) {
    log::error("admin: {} {}: {}", req.method, req.path, e.what());
    res = AdminResponse::error(500, "internal error; see the gateway's log");
  }
  if (req.method != "GET") {
    log::info("admin: {} {} by {} -> {}", req.method, req.path, req.actor, res.status);
  }
  return res;
}

void AdminServer::runHandlerThread() {
  std::unique_lock<std::mutex> lock(jobsMutex_);
  for (;;) {
    jobsReady_.wait(lock, [this] { return stopping_ || !todo_.empty(); });
    if (stopping_) {
      return;
    }
    std::unique_ptr<Job> job = std::move(todo_.front());
    todo_.pop_front();
    lock.unlock();
    job->res = handle(job->req);
    lock.lock();
    done_.push_back(std::move(job));
    event_active(jobsDone_, EV_READ, 0);  // thread-safe: evthread_use_pthreads()
  }
}

void AdminServer::sendReplies() {
  std::deque<std::unique_ptr<Job>> done;
  {
    std::lock_guard<std::mutex> lock(jobsMutex_);
    done.swap(done_);
  }
  for (const auto& job : done) {
    sendReply(job->request, job->res);
  }
}

void AdminServer::serve(evhttp_request* request) {
  AdminRequest req;
  req.method = methodName(evhttp_request_get_command(request));
  const std::string peer = peerOf(request);
  evkeyvalq* in = evhttp_request_get_input_headers(request);
  AdminResponse res;

  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(request);
  const char* rawPath = uri ? evhttp_uri_get_path(uri) : nullptr;
  std::size_t decodedLength = 0;
  char* decoded = rawPath ? evhttp_uridecode(rawPath, 0, &decodedLength) : nullptr;
  bool bad = decoded == nullptr || std::strlen(decoded) != decodedLength;
  for (std::size_t i = 0; decoded && !bad && i < decodedLength; ++i) {
    // A control character (%0a) has no place in a path and would forge lines of the log.
    bad = static_cast<unsigned char>(decoded[i]) < 0x20 || decoded[i] == 0x7f;
  }
  if (decoded) {
    req.path = decoded;
    std::free(decoded);
  }
  if (!bad && uri && evhttp_uri_get_query(uri)) {
    evkeyvalq params;
    params.tqh_first = nullptr;  // TAILQ_INIT without <sys/queue.h>
    params.tqh_last = &params.tqh_first;
    if (evhttp_parse_query_str(evhttp_uri_get_query(uri), &params) != 0) {
      bad = true;
    }
    for (evkeyval* kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
      req.query.emplace(kv->key, kv->value);
    }
    evhttp_clear_headers(&params);
  }
  if (req.path.empty() || req.path[0] != '/') {
    bad = true;
  }

  const bool isPublicPath = isPublic(req.method, req.path);
  if (bad) {
    res = AdminResponse::error(400, "malformed request target");
  } else if (!isPublicPath && !authorized(evhttp_find_header(in, "Authorization"))) {
    res = AdminResponse::error(401,
                               "a bearer token is required (Authorization: Bearer TOKEN; "
                               "the token is in admin.token_file)");
    res.headers["WWW-Authenticate"] = "Bearer realm=\"smtpgate\"";
  } else {
    evbuffer* body = evhttp_request_get_input_buffer(request);
    req.body.resize(evbuffer_get_length(body));
    if (!req.body.empty()) {
      evbuffer_copyout(body, req.body.data(), req.body.size());
    }
    const char* actor = evhttp_find_header(in, "X-Smtpgate-Actor");
    req.actor = actor ? fmt::format("{} ({})", cleanActor(actor), peer) : "api " + peer;
    if (req.method == "HEAD") {
      req.method = "GET";  // libevent leaves the body out of a HEAD reply
    }
    if (!isPublicPath) {
      {
        std::lock_guard<std::mutex> lock(jobsMutex_);
        todo_.push_back(std::make_unique<Job>(Job{request, std::move(req), {}}));
      }
      jobsReady_.notify_one();
      return;  // sendReplies() answers it
    }
    res = handle(req);
  }
  sendReply(request, res);
}

}  // namespace smtpgate
