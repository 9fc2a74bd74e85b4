#include "gateway/capability_probe.h"

#include "gateway/log.h"

namespace smtpgate {

void CapabilityProbe::start(uv_loop_t* loop, const Runtime& runtime, CapabilityCache& cache) {
  const Config& c = runtime.config;
  auto* probe = new CapabilityProbe(cache, c.smtp.maxMessageBytes);
  BackendLink::Settings settings;
  settings.host = c.smtpBackend.address.host;
  settings.port = c.smtpBackend.address.port;
  settings.connectTimeoutS = c.limits.timeouts.backendConnect;
  settings.replyTimeoutS = c.limits.timeouts.backendConnect;
  settings.tlsContext = runtime.backendTlsContext;
  settings.options.heloName = c.hostname;
  settings.options.handoff = smtp::Handoff::None;
  settings.options.startTls = c.smtpBackend.startTls;
  probe->link_ = BackendLink::open(loop, probe, std::move(settings));
}

void CapabilityProbe::onBackendReady(bool ok, const std::string& reason,
                                     const smtp::Capabilities& capabilities) {
  if (ok) {
    auto keywords = smtp::filterForClients(capabilities, maxMessageBytes_);
    std::string list;
    for (const auto& k : keywords) {
      list += (list.empty() ? "" : ", ") + k;
    }
    log::info("backend capabilities: {}", list);
    cache_.set(std::move(keywords));
    link_->quit();
  } else {
    log::warning("backend probe failed ({}); EHLO offers a default list until a session "
                 "reaches the backend",
                 reason);
  }
  delete this;
}

}  // namespace smtpgate
