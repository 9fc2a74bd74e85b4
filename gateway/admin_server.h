#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/admin_http.h"
#include "gateway/config.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_request;

namespace smtpgate {

// The admin HTTP server of SPEC section 7: libevent's evhttp (no HTTP parser of our own) on an
// event loop and thread of its own, so that a slow report query never delays a mail session.
// It checks the bearer token and the request limits, turns the request into an AdminRequest,
// and hands it to the handler.
//
// Two threads: the event loop answers the public paths itself (they are cheap), and hands
// every other request to one handler thread, in order, whose replies it sends when they are
// ready. So a slow request (a report over a large store, a tenant change waiting for its lock,
// a query during a database outage) never delays /healthz, which load balancers and
// Kubernetes probe with short timeouts.
//
// Public without a token: GET /healthz and the page's static files (/, /index.html, /assets/*:
// they hold no data; the page asks for the token). Everything else needs
// "Authorization: Bearer TOKEN", compared in constant time; 401 otherwise.
class AdminServer {
 public:
  using Handler = std::function<AdminResponse(const AdminRequest&)>;
  static constexpr std::size_t kMaxBodyBytes = 256 * 1024;
  static constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr int kTimeoutS = 30;

  AdminServer(ListenAddress listen, std::string token, Handler handler);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the address (on the calling thread, so that a busy port fails the start-up) and
  // starts the thread. Returns "" or the error.
  std::string start();
  // Thread-safe: ends the loop and joins the threads (after the handler call in progress, if
  // any). Requests in flight are cut.
  void stop();
  // Thread-safe: a reload may rotate the token.
  void setToken(std::string token);
  // The port actually bound (for "listen": "127.0.0.1:0" in tests).
  uint16_t port() const { return boundPort_; }

  // Public paths need no token.
  static bool isPublic(const std::string& method, const std::string& path);

 private:
  struct Job;  // one request between the loop and the handler thread
  static void onRequest(evhttp_request* request, void* arg);
  static void onJobsDone(int fd, short events, void* arg);
  void serve(evhttp_request* request);
  bool authorized(const char* header);
  AdminResponse handle(const AdminRequest& req);
  void runHandlerThread();
  void sendReplies();

  ListenAddress listen_;
  Handler handler_;
  std::mutex tokenMutex_;
  std::string token_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  event* jobsDone_ = nullptr;  // activated by the handler thread: replies are ready
  std::thread thread_;
  std::thread handlerThread_;
  std::mutex jobsMutex_;
  std::condition_variable jobsReady_;
  std::deque<std::unique_ptr<Job>> todo_;  // for the handler thread
  std::deque<std::unique_ptr<Job>> done_;  // for the loop to reply
  bool stopping_ = false;
  uint16_t boundPort_ = 0;
};

}  // namespace smtpgate
