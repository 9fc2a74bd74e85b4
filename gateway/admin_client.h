#pragma once

#include <event2/http.h>

#include <string>

#include "gateway/config.h"

namespace smtpgate {

// A blocking HTTP/1.1 client of the admin API for the command line (`smtpgate tenant`), on
// libevent's evhttp: one request per connection, the bearer token and the actor header sent
// with each. A wildcard listen address is reached on loopback.
class AdminClient {
 public:
  struct Answer {
    int status = 0;  // 0: no answer (see `error`)
    std::string body;
    std::string error;  // "Connection refused", "timed out", ...
  };

  AdminClient(const ListenAddress& listen, std::string token, std::string actor);

  Answer request(evhttp_cmd_type method, const std::string& uri, const std::string& body) const;
  // "127.0.0.1:8025" or "[::1]:8025"
  const std::string& hostHeader() const { return hostHeader_; }
  // Percent-encodes a query value.
  static std::string encode(const std::string& text);

 private:
  std::string host_;
  uint16_t port_ = 0;
  std::string hostHeader_;
  std::string token_;
  std::string actor_;
};

}  // namespace smtpgate
