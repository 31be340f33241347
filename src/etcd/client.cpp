// SPDX-License-Identifier: MIT
#include "etcd/client.hpp"

#include <fmt/format.h>
#include <poll.h>

#include <cstdlib>
#include <utility>

#include "etcd/codec.hpp"
#include "etcd/curl_api.hpp"

namespace godislock::etcd {

using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Result;
using Json = codec::Json;

namespace {

struct EasyDeleter {
  void operator()(CURL* e) const { curl_api().easy_cleanup(e); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const { curl_api().multi_cleanup(m); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_api().slist_free_all(s); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Multi = std::unique_ptr<CURLM, MultiDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

size_t append_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// How an attempt on one endpoint ended, as far as choosing the next goes.
struct Failure {
  Error error;
  bool try_next = false;  // another endpoint may do better
};

Failure fail(ErrorKind kind, std::string message, bool try_next) {
  return Failure{Error{kind, std::move(message)}, try_next};
}

// One transfer's outcome: curl's code once done.
enum class Pump { done, timeout, interrupted, failed };

bool is_readable(int fd) {
  if (fd < 0) {
    return false;
  }
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// Drives `multi` until `easy` finishes, the deadline passes or the
// interrupt fd turns readable. One curl_multi_poll per round waits on
// curl's sockets and the interrupt fd together (curl_api().multi_poll(3):
// "extra file descriptors"), at most until the deadline or curl's own timer.
// `stop_early` lets a streaming caller return as soon as data arrived.
template <typename StopEarly>
Pump pump(CURLM* multi, CURL* easy, Deadline deadline, int interrupt_fd,
          CURLcode* result, StopEarly stop_early) {
  for (;;) {
    int running = 0;
    if (curl_api().multi_perform(multi, &running) != CURLM_OK) {
      return Pump::failed;
    }
    int left = 0;
    while (CURLMsg* msg = curl_api().multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
        *result = msg->data.result;
        return Pump::done;
      }
    }
    if (stop_early()) {
      return Pump::done;
    }
    if (is_readable(interrupt_fd)) {
      return Pump::interrupted;
    }
    if (deadline.expired()) {
      return Pump::timeout;
    }
    curl_waitfd extra{};
    extra.fd = interrupt_fd;
    extra.events = CURL_WAIT_POLLIN;
    int timeout_ms = deadline.poll_timeout_ms();
    if (timeout_ms < 0) {
      timeout_ms = 3600 * 1000;
    }
    if (curl_api().multi_poll(multi, interrupt_fd >= 0 ? &extra : nullptr,
                              interrupt_fd >= 0 ? 1 : 0, timeout_ms,
                              nullptr) != CURLM_OK) {
      return Pump::failed;
    }
  }
}

// Maps a curl failure to our kinds. Connection-level failures let the
// caller move to the next endpoint. `fresh`: the connection was opened for
// this request.
Failure curl_failure(CURLcode rc, const char* errbuf, const std::string& ep,
                     bool fresh) {
  std::string why = errbuf[0] != '\0' ? errbuf : curl_api().easy_strerror(rc);
  // A server that accepts a new connection, reads the request and closes
  // it without any reply is not an HTTP server: redis-server does this
  // (it drops clients that send "POST" or "Host:"). On a reused connection
  // libcurl already retries such a close itself, and an etcd that dies
  // mid-request rarely does so on a brand-new connection.
  if (rc == CURLE_GOT_NOTHING && fresh) {
    return fail(ErrorKind::protocol,
                fmt::format("etcd {}: not an etcd JSON gateway: the server "
                            "closed the connection without an HTTP reply",
                            ep),
                true);
  }
  switch (rc) {
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
      return fail(ErrorKind::protocol,
                  fmt::format("etcd {}: not an etcd JSON gateway: {}", ep, why),
                  true);
    case CURLE_OPERATION_TIMEDOUT:
      return fail(ErrorKind::timeout, fmt::format("etcd {}: {}", ep, why),
                  true);
    default:
      return fail(ErrorKind::io, fmt::format("etcd {}: {}", ep, why), true);
  }
}

// Maps an etcd error reply ({"error","message","code"} with a gRPC code,
// https://grpc.github.io/grpc/core/md_doc_statuscodes.html). Code 14
// (unavailable: no leader, leader changed, member stopping) moves on to
// the next endpoint.
Failure grpc_failure(int64_t code, const std::string& message,
                     const std::string& ep) {
  std::string text = fmt::format("etcd {}: {}", ep, message);
  bool auth = code == 7 || code == 16 ||
              message.find("authentication") != std::string::npos ||
              message.find("user name") != std::string::npos ||
              message.find("permission denied") != std::string::npos;
  if (auth) {
    return fail(ErrorKind::auth, std::move(text), false);
  }
  if (code == 14) {
    // Transient (busy): the caller retries it through an outage as it
    // does a timeout, instead of ending the run at the first election.
    return fail(ErrorKind::busy, std::move(text), true);
  }
  return fail(ErrorKind::server, std::move(text), false);
}

// An error reply, either the unary form {"error": "...", "code": N,
// "message": "..."} or the streaming form {"error": {"grpc_code": N,
// "message": "..."}}; nullopt for anything else.
std::optional<std::pair<int64_t, std::string>> error_reply(const Json& j) {
  auto it = j.find("error");
  if (it == j.end()) {
    return std::nullopt;
  }
  const Json& src = it->is_object() ? *it : j;
  auto code = src.find(it->is_object() ? "grpc_code" : "code");
  if (code == src.end() || !code->is_number_integer()) {
    return std::nullopt;
  }
  std::string message;
  if (auto m = src.find("message"); m != src.end() && m->is_string()) {
    message = m->get<std::string>();
  }
  return std::make_pair(code->get<int64_t>(), message);
}

// Where a request goes: the URL, and with --sni the address it is
// connected to instead (the URL then names the SNI name, so that libcurl
// sends it and checks the certificate against it).
struct Target {
  std::string url;
  Slist connect_to;
};

Target target_of(const std::string& url, const std::string& name,
                 const ClientTls& tls);

struct Endpoint {
  std::string url;   // "http://127.0.0.1:2379", no trailing slash
  std::string name;  // "127.0.0.1:2379", for messages
  Easy easy;
  Target target;  // set once libcurl is loaded
};

Result<Endpoint> parse_endpoint(const std::string& text) {
  std::string rest = text;
  std::string scheme = "http://";
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    scheme = "https://";
  } else if (rest.find("://") != std::string::npos) {
    return Error{ErrorKind::config,
                 fmt::format("etcd endpoint {}: only http:// and https:// "
                             "are supported",
                             text)};
  }
  while (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return Error{ErrorKind::config,
                 fmt::format("etcd endpoint {}: expected host:port", text)};
  }
  return Endpoint{scheme + rest, rest, nullptr, Target{}};
}

bool is_https(const std::string& url) { return url.rfind("https://", 0) == 0; }

Target target_of(const std::string& url, const std::string& name,
                 const ClientTls& tls) {
  if (tls.sni.empty() || !is_https(url)) {
    return Target{url, nullptr};
  }
  // name is "host:port" or "[v6]:port", as CURLOPT_CONNECT_TO wants them.
  size_t colon = name.rfind(':');
  std::string port = name.substr(colon + 1);
  std::string entry =
      fmt::format("{}:{}:{}:{}", tls.sni, port, name.substr(0, colon), port);
  return Target{fmt::format("https://{}:{}", tls.sni, port),
                Slist(curl_api().slist_append(nullptr, entry.c_str()))};
}

// Options shared by every handle: plain HTTP/1.1 to the endpoint itself
// (no proxy from the environment, no redirects, no Expect: 100-continue
// round trip), Nagle off, TCP keep-alive probes so that a dead peer of a
// long watch is noticed; for https, the trust and client certificate.
void set_common(CURL* e, char* errbuf, const Target& target,
                const ClientTls& tls) {
  const std::string& url = target.url;
  const CurlApi& c = curl_api();
  if (target.connect_to) {
    c.easy_setopt(e, CURLOPT_CONNECT_TO, target.connect_to.get());
  }
  c.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  c.easy_setopt(e, CURLOPT_NOPROXY, "*");
  c.easy_setopt(e, CURLOPT_PROTOCOLS_STR, is_https(url) ? "https" : "http");
  c.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  c.easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  c.easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  c.easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  c.easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L);
  c.easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L);
  c.easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  c.easy_setopt(e, CURLOPT_WRITEFUNCTION, append_body);
  if (!is_https(url)) {
    return;
  }
  c.easy_setopt(e, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  // libcurl does not read SSL_CERT_FILE / SSL_CERT_DIR itself (the curl
  // tool does); they are honoured here as OpenSSL and rediss:// do.
  const char* env_file = std::getenv("SSL_CERT_FILE");
  const char* env_dir = std::getenv("SSL_CERT_DIR");
  std::string ca_file =
      !tls.ca_file.empty() ? tls.ca_file : (env_file ? env_file : "");
  std::string ca_dir =
      !tls.ca_dir.empty() ? tls.ca_dir : (env_dir ? env_dir : "");
  if (!ca_file.empty()) {
    c.easy_setopt(e, CURLOPT_CAINFO, ca_file.c_str());
  }
  if (!ca_dir.empty()) {
    c.easy_setopt(e, CURLOPT_CAPATH, ca_dir.c_str());
  }
  if (!tls.cert_file.empty()) {
    c.easy_setopt(e, CURLOPT_SSLCERT, tls.cert_file.c_str());
    c.easy_setopt(e, CURLOPT_SSLKEY, tls.key_file.c_str());
  }
  if (tls.insecure) {
    c.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    c.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

Slist make_headers(const std::string& token) {
  curl_slist* h = nullptr;
  h = curl_api().slist_append(h, "Content-Type: application/json");
  h = curl_api().slist_append(h, "Expect:");
  if (!token.empty()) {
    h = curl_api().slist_append(h, ("Authorization: " + token).c_str());
  }
  return Slist(h);
}

Failure protocol_failure(const std::string& ep, long status,
                         const std::string& body) {
  std::string start = body.substr(0, 40);
  for (char& c : start) {
    if (c < 0x20 || c > 0x7e) {
      c = ' ';
    }
  }
  return fail(ErrorKind::protocol,
              fmt::format("etcd {}: not an etcd JSON gateway (HTTP {}, "
                          "reply starts \"{}\")",
                          ep, status, start),
              true);
}

}  // namespace

// --- Watch ---

class Watch::Impl {
 public:
  Impl(std::string endpoint, int interrupt_fd, ClientTls tls)
      : m_endpoint(std::move(endpoint)),
        m_interrupt_fd(interrupt_fd),
        m_tls(std::move(tls)) {
    m_errbuf[0] = '\0';
  }
  ~Impl() {
    if (m_easy && m_multi && m_added) {
      curl_api().multi_remove_handle(m_multi.get(), m_easy.get());
    }
  }

  // Starts the POST; nothing is waited for yet.
  void start(const std::string& url, const std::string& body,
             const std::string& token) {
    m_multi.reset(curl_api().multi_init());
    m_easy.reset(curl_api().easy_init());
    CURL* e = m_easy.get();
    m_target = target_of(url, m_endpoint, m_tls);
    set_common(e, m_errbuf, m_target, m_tls);
    m_headers = make_headers(token);
    // grpc-gateway passes a "Grpc-Metadata-" header on as gRPC metadata;
    // etcd's "hasleader" key is what clientv3.WithRequireLeader sets.
    // Appended to a list that is not empty, which keeps its head.
    curl_api().slist_append(m_headers.get(), "Grpc-Metadata-hasleader: true");
    curl_api().easy_setopt(e, CURLOPT_URL,
                           (m_target.url + "/v3/watch").c_str());
    curl_api().easy_setopt(e, CURLOPT_HTTPHEADER, m_headers.get());
    curl_api().easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.c_str());
    curl_api().easy_setopt(e, CURLOPT_WRITEDATA, &m_buf);
    curl_api().multi_add_handle(m_multi.get(), e);
    m_added = true;
  }

  // The next raw message (one line of the stream), parsed.
  Result<Json> next_json(Deadline deadline) {
    for (;;) {
      auto nl = m_buf.find('\n');
      if (nl != std::string::npos || (m_done && !m_buf.empty())) {
        std::string line = m_buf.substr(0, nl);
        m_buf.erase(0, nl == std::string::npos ? m_buf.size() : nl + 1);
        if (line.find_first_not_of(" \r\t") == std::string::npos) {
          continue;
        }
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          long status = 0;
          curl_api().easy_getinfo(m_easy.get(), CURLINFO_RESPONSE_CODE,
                                  &status);
          return protocol_failure(m_endpoint, status, line).error;
        }
        return j;
      }
      if (m_done) {
        if (m_result != CURLE_OK) {
          return curl_failure(m_result, m_errbuf, m_endpoint, true).error;
        }
        return Error{ErrorKind::io,
                     fmt::format("etcd {}: watch stream closed", m_endpoint)};
      }
      CURLcode rc = CURLE_OK;
      Pump p = pump(m_multi.get(), m_easy.get(), deadline, m_interrupt_fd, &rc,
                    [this] { return m_buf.find('\n') != std::string::npos; });
      switch (p) {
        case Pump::done:
          if (m_buf.find('\n') == std::string::npos) {
            m_done = true;
            m_result = rc;
          }
          break;
        case Pump::timeout:
          return Error{ErrorKind::timeout,
                       fmt::format("etcd {}: no watch event before the "
                                   "deadline",
                                   m_endpoint)};
        case Pump::interrupted:
          return Error{ErrorKind::interrupted,
                       fmt::format("etcd {}: watch interrupted", m_endpoint)};
        case Pump::failed:
          return Error{ErrorKind::io,
                       fmt::format("etcd {}: curl multi failure", m_endpoint)};
      }
    }
  }

  Result<WatchResponse> next(Deadline deadline) {
    if (m_canceled) {
      return Error{ErrorKind::io,
                   fmt::format("etcd {}: the watch was canceled", m_endpoint)};
    }
    auto j = next_json(deadline);
    if (!j.ok()) {
      return j.error();
    }
    if (auto err = error_reply(*j)) {
      m_canceled = true;
      return grpc_failure(err->first, err->second, m_endpoint).error;
    }
    auto result = j->find("result");
    if (result == j->end() || !result->is_object() ||
        result->find("header") == result->end()) {
      return protocol_failure(m_endpoint, 200, j->dump()).error;
    }
    try {
      WatchResponse r = codec::decode_watch(*result);
      if (r.canceled) {
        m_canceled = true;
      }
      return r;
    } catch (const codec::DecodeError& e) {
      return Error{
          ErrorKind::protocol,
          fmt::format("etcd {}: bad watch message: {}", m_endpoint, e.what())};
    }
  }

  const std::string& endpoint() const { return m_endpoint; }

 private:
  std::string m_endpoint;
  int m_interrupt_fd;
  ClientTls m_tls;
  Multi m_multi;
  Easy m_easy;
  Target m_target;
  Slist m_headers;
  bool m_added = false;
  std::string m_buf;
  bool m_done = false;
  bool m_canceled = false;
  CURLcode m_result = CURLE_OK;
  char m_errbuf[CURL_ERROR_SIZE];
};

Watch::Watch(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Watch::Watch(Watch&&) noexcept = default;
Watch& Watch::operator=(Watch&&) noexcept = default;
Watch::~Watch() = default;

Result<WatchResponse> Watch::next(Deadline deadline) {
  return m_impl->next(deadline);
}

const std::string& Watch::endpoint() const { return m_impl->endpoint(); }

// --- Client ---

namespace {

// The outcome of one attempt on one endpoint.
struct Attempt {
  Json json;
  std::optional<Failure> failure;
};

Attempt failed(Failure f) { return Attempt{Json(), std::move(f)}; }

}  // namespace

class Client::Impl {
 public:
  explicit Impl(ClientOptions options) : m_options(std::move(options)) {
    m_errbuf[0] = '\0';
  }

  util::Status init() {
    if (m_options.endpoints.empty()) {
      return Error{ErrorKind::config, "etcd: no endpoint given"};
    }
    for (const auto& text : m_options.endpoints) {
      auto ep = parse_endpoint(text);
      if (!ep.ok()) {
        return ep.error();
      }
      m_endpoints.push_back(std::move(*ep));
    }
    if (auto api = load_curl(); !api.ok()) {
      return api.error();
    }
    for (auto& ep : m_endpoints) {
      ep.target = target_of(ep.url, ep.name, m_options.tls);
    }
    m_multi.reset(curl_api().multi_init());
    if (!m_multi) {
      return Error{ErrorKind::io, "etcd: curl_multi_init failed"};
    }
    return util::ok_status();
  }

  // POSTs `body` to `path`, trying the endpoints as the class comment
  // says; returns the reply's JSON object (a streaming reply's "result").
  Result<Json> call(const char* path, const Json& body, Deadline deadline) {
    std::string text = body.dump();
    std::optional<Error> last;
    size_t n = m_endpoints.size();
    for (size_t i = 0; i < n; ++i) {
      size_t idx = (m_current + i) % n;
      Attempt a = call_on(idx, path, text, deadline);
      if (!a.failure) {
        m_current = idx;
        return std::move(a.json);
      }
      last = a.failure->error;
      if (!a.failure->try_next || last->kind == ErrorKind::interrupted ||
          deadline.expired()) {
        break;
      }
    }
    if (last->kind == ErrorKind::timeout && deadline.expired()) {
      last->message += " (deadline passed)";
    }
    return *last;
  }

  Result<Watch> watch(const WatchRequest& req, Deadline deadline) {
    std::string body = codec::encode(req).dump();
    std::optional<Error> last;
    size_t n = m_endpoints.size();
    for (size_t i = 0; i < n; ++i) {
      size_t idx = (m_current + i) % n;
      bool reauthed = false;
      for (;;) {
        if (wants_auth() && m_token.empty()) {
          if (auto f = authenticate(idx, attempt_deadline(deadline))) {
            last = f->error;
            if (!f->try_next) {
              return *last;
            }
            break;
          }
        }
        const Endpoint& ep = m_endpoints[idx];
        auto impl = std::make_unique<Watch::Impl>(
            ep.name, m_options.interrupt_fd, m_options.tls);
        impl->start(ep.url, body, m_token);
        ++m_stats.requests;
        ++m_stats.connections;
        auto first = impl->next(attempt_deadline(deadline));
        if (first.ok() && first->created && !first->canceled) {
          m_current = idx;
          return Watch(std::move(impl));
        }
        if (first.ok()) {
          // Created and canceled at once: refused (permission denied).
          const std::string& why = first->cancel_reason;
          bool auth = why.find("ermission") != std::string::npos ||
                      why.find("auth") != std::string::npos;
          return Error{auth ? ErrorKind::auth : ErrorKind::server,
                       fmt::format("etcd {}: watch refused: {}", ep.name,
                                   why.empty() ? "canceled" : why)};
        }
        last = first.error();
        if (last->kind == ErrorKind::auth && wants_auth() && !reauthed &&
            last->message.find("invalid auth token") != std::string::npos) {
          reauthed = true;
          m_token.clear();
          continue;
        }
        break;
      }
      bool try_next =
          last->kind == ErrorKind::io || last->kind == ErrorKind::protocol ||
          last->kind == ErrorKind::timeout || last->kind == ErrorKind::busy;
      if (!try_next || deadline.expired()) {
        break;
      }
    }
    return *last;
  }

  const std::string& current_endpoint() const {
    return m_endpoints[m_current].name;
  }
  // As call(), on the endpoint named `endpoint` only; m_current stays.
  Result<Json> call_at(const std::string& endpoint, const char* path,
                       const Json& body, Deadline deadline) {
    for (size_t i = 0; i < m_endpoints.size(); ++i) {
      if (m_endpoints[i].name == endpoint) {
        Attempt a = call_on(i, path, body.dump(), deadline);
        if (a.failure) {
          return a.failure->error;
        }
        return std::move(a.json);
      }
    }
    return Error{ErrorKind::config,
                 fmt::format("etcd: {} is not one of the endpoints", endpoint)};
  }
  void set_interrupt_fd(int fd) { m_options.interrupt_fd = fd; }
  void set_attempt_timeout(std::chrono::milliseconds t) {
    m_options.attempt_timeout = t;
  }
  ClientStats stats() const { return m_stats; }

 private:
  bool wants_auth() const { return !m_options.user.empty(); }

  Deadline attempt_deadline(Deadline deadline) const {
    if (m_options.attempt_timeout.count() > 0) {
      return deadline.min(Deadline::after(m_options.attempt_timeout));
    }
    return deadline;
  }

  // A call on one endpoint, authenticating first when needed and once more
  // when the server calls the token invalid (simple tokens expire, by
  // default after 300 s: etcd's --auth-token-ttl).
  Attempt call_on(size_t idx, const char* path, const std::string& body,
                  Deadline deadline) {
    Deadline d = attempt_deadline(deadline);
    for (int round = 0; round < 2; ++round) {
      if (wants_auth() && m_token.empty()) {
        if (auto f = authenticate(idx, d)) {
          return failed(std::move(*f));
        }
      }
      Attempt a = post(idx, path, body, true, d);
      if (a.failure && a.failure->error.kind == ErrorKind::auth &&
          wants_auth() && round == 0 &&
          a.failure->error.message.find("invalid auth token") !=
              std::string::npos) {
        m_token.clear();
        continue;
      }
      return a;
    }
    return failed(fail(ErrorKind::auth, "etcd: token refused twice", false));
  }

  std::optional<Failure> authenticate(size_t idx, Deadline deadline) {
    Json body = {{"name", m_options.user}, {"password", m_options.password}};
    Attempt a =
        post(idx, "/v3/auth/authenticate", body.dump(), false, deadline);
    if (a.failure) {
      if (a.failure->error.kind == ErrorKind::auth ||
          a.failure->error.kind == ErrorKind::server) {
        // Never the password; the user name helps.
        a.failure->error.message = fmt::format(
            "etcd {}: authentication as {} failed: {}", m_endpoints[idx].name,
            m_options.user,
            a.failure->error.message.substr(m_endpoints[idx].name.size() + 7));
        a.failure->error.kind = ErrorKind::auth;
      }
      return a.failure;
    }
    auto it = a.json.find("token");
    if (it == a.json.end() || !it->is_string() ||
        it->get_ref<const std::string&>().empty()) {
      return fail(ErrorKind::auth,
                  fmt::format("etcd {}: no token in the authenticate reply "
                              "(is authentication enabled?)",
                              m_endpoints[idx].name),
                  false);
    }
    m_token = it->get<std::string>();
    return std::nullopt;
  }

  // One HTTP POST on the endpoint's kept-alive handle, waited for in
  // pump(); on a timeout or an interrupt the transfer is removed from the
  // multi handle, which closes its connection (a half-read reply cannot be
  // reused).
  Attempt post(size_t idx, const char* path, const std::string& body,
               bool with_token, Deadline deadline) {
    Endpoint& ep = m_endpoints[idx];
    if (!ep.easy) {
      ep.easy.reset(curl_api().easy_init());
      if (!ep.easy) {
        return failed(
            fail(ErrorKind::io, "etcd: curl_easy_init failed", false));
      }
      set_common(ep.easy.get(), m_errbuf, ep.target, m_options.tls);
    }
    CURL* e = ep.easy.get();
    std::string reply;
    m_errbuf[0] = '\0';
    Slist headers = make_headers(with_token ? m_token : std::string());
    curl_api().easy_setopt(e, CURLOPT_URL, (ep.target.url + path).c_str());
    curl_api().easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
    curl_api().easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                           static_cast<curl_off_t>(body.size()));
    curl_api().easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_api().easy_setopt(e, CURLOPT_WRITEDATA, &reply);
    curl_api().multi_add_handle(m_multi.get(), e);
    ++m_stats.requests;
    CURLcode rc = CURLE_OK;
    Pump p = pump(m_multi.get(), e, deadline, m_options.interrupt_fd, &rc,
                  [] { return false; });
    curl_api().multi_remove_handle(m_multi.get(), e);
    long connects = 0;
    curl_api().easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    m_stats.connections += static_cast<uint64_t>(connects);
    // The handle keeps pointers to these until the next request.
    curl_api().easy_setopt(e, CURLOPT_HTTPHEADER, nullptr);
    curl_api().easy_setopt(e, CURLOPT_POSTFIELDS, nullptr);
    switch (p) {
      case Pump::done:
        break;
      case Pump::timeout:
        return failed(
            fail(ErrorKind::timeout,
                 fmt::format("etcd {}: no reply to {} in time", ep.name, path),
                 true));
      case Pump::interrupted:
        return failed(
            fail(ErrorKind::interrupted,
                 fmt::format("etcd {}: {} interrupted", ep.name, path), false));
      case Pump::failed:
        return failed(fail(ErrorKind::io,
                           fmt::format("etcd {}: curl multi failure", ep.name),
                           true));
    }
    if (rc != CURLE_OK) {
      return failed(curl_failure(rc, m_errbuf, ep.name, connects > 0));
    }
    long status = 0;
    curl_api().easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    Json j = Json::parse(reply, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return failed(protocol_failure(ep.name, status, reply));
    }
    if (auto err = error_reply(j)) {
      return failed(grpc_failure(err->first, err->second, ep.name));
    }
    // Streaming calls answer {"result": {...}}.
    if (auto r = j.find("result"); r != j.end() && r->is_object()) {
      Json inner = std::move(*r);
      j = std::move(inner);
    }
    if (status != 200 || j.find("header") == j.end()) {
      return failed(protocol_failure(ep.name, status, reply));
    }
    return Attempt{std::move(j), std::nullopt};
  }

  ClientOptions m_options;
  std::vector<Endpoint> m_endpoints;
  size_t m_current = 0;
  Multi m_multi;
  std::string m_token;
  ClientStats m_stats;
  char m_errbuf[CURL_ERROR_SIZE];
};

namespace {

// Decodes with `decode`, turning a reply of the wrong shape into a
// protocol error.
template <typename T, typename Decode>
Result<T> decoded(Result<Json> j, const std::string& ep, Decode decode) {
  if (!j.ok()) {
    return j.error();
  }
  try {
    return decode(*j);
  } catch (const codec::DecodeError& e) {
    return Error{ErrorKind::protocol,
                 fmt::format("etcd {}: unexpected reply: {}", ep, e.what())};
  } catch (const nlohmann::json::exception& e) {
    return Error{ErrorKind::protocol,
                 fmt::format("etcd {}: unexpected reply: {}", ep, e.what())};
  }
}

}  // namespace

Result<Client> Client::create(ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  auto st = impl->init();
  if (!st.ok()) {
    return st.error();
  }
  return Client(std::move(impl));
}

Client::Client(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<RangeResponse> Client::range(const RangeRequest& req,
                                    Deadline deadline) {
  return decoded<RangeResponse>(
      m_impl->call("/v3/kv/range", codec::encode(req), deadline),
      current_endpoint(), codec::decode_range);
}

Result<PutResponse> Client::put(const PutRequest& req, Deadline deadline) {
  return decoded<PutResponse>(
      m_impl->call("/v3/kv/put", codec::encode(req), deadline),
      current_endpoint(), codec::decode_put);
}

Result<DeleteRangeResponse> Client::delete_range(const DeleteRangeRequest& req,
                                                 Deadline deadline) {
  return decoded<DeleteRangeResponse>(
      m_impl->call("/v3/kv/deleterange", codec::encode(req), deadline),
      current_endpoint(), codec::decode_delete_range);
}

Result<TxnResponse> Client::txn(const TxnRequest& req, Deadline deadline) {
  return decoded<TxnResponse>(
      m_impl->call("/v3/kv/txn", codec::encode(req), deadline),
      current_endpoint(), codec::decode_txn);
}

Result<LeaseGrantResponse> Client::lease_grant(std::chrono::seconds ttl,
                                               Deadline deadline) {
  Json body = {{"TTL", std::to_string(ttl.count())}};
  return decoded<LeaseGrantResponse>(
      m_impl->call("/v3/lease/grant", body, deadline), current_endpoint(),
      codec::decode_lease_grant);
}

Result<LeaseKeepAliveResponse> Client::lease_keep_alive(int64_t id,
                                                        Deadline deadline) {
  Json body = {{"ID", std::to_string(id)}};
  return decoded<LeaseKeepAliveResponse>(
      m_impl->call("/v3/lease/keepalive", body, deadline), current_endpoint(),
      codec::decode_lease_keep_alive);
}

util::Status Client::lease_revoke(int64_t id, Deadline deadline) {
  Json body = {{"ID", std::to_string(id)}};
  auto r = m_impl->call("/v3/lease/revoke", body, deadline);
  if (!r.ok()) {
    return r.error();
  }
  return util::ok_status();
}

Result<LeaseTimeToLiveResponse> Client::lease_time_to_live(int64_t id,
                                                           bool keys,
                                                           Deadline deadline) {
  Json body = {{"ID", std::to_string(id)}, {"keys", keys}};
  return decoded<LeaseTimeToLiveResponse>(
      m_impl->call("/v3/lease/timetolive", body, deadline), current_endpoint(),
      codec::decode_lease_time_to_live);
}

Result<StatusResponse> Client::status(Deadline deadline) {
  return decoded<StatusResponse>(
      m_impl->call("/v3/maintenance/status", Json::object(), deadline),
      current_endpoint(), codec::decode_status);
}

Result<Watch> Client::watch(const WatchRequest& req, Deadline deadline) {
  return m_impl->watch(req, deadline);
}

void Client::set_interrupt_fd(int fd) { m_impl->set_interrupt_fd(fd); }

void Client::set_attempt_timeout(std::chrono::milliseconds timeout) {
  m_impl->set_attempt_timeout(timeout);
}

const std::string& Client::current_endpoint() const {
  return m_impl->current_endpoint();
}

Result<StatusResponse> Client::status_at(const std::string& endpoint,
                                         Deadline deadline) {
  return decoded<StatusResponse>(
      m_impl->call_at(endpoint, "/v3/maintenance/status", Json::object(),
                      deadline),
      endpoint, codec::decode_status);
}

Result<LeaseKeepAliveResponse> Client::lease_keep_alive_at(
    const std::string& endpoint, int64_t id, Deadline deadline) {
  Json body = {{"ID", std::to_string(id)}};
  return decoded<LeaseKeepAliveResponse>(
      m_impl->call_at(endpoint, "/v3/lease/keepalive", body, deadline),
      endpoint, codec::decode_lease_keep_alive);
}

ClientStats Client::stats() const { return m_impl->stats(); }

}  // namespace godislock::etcd
