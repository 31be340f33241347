// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "etcd/types.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

namespace godislock::etcd {

// --- Interface ---

// TLS to the members (https://): the peer's chain and host name are
// checked unless `insecure`. Empty files: OpenSSL's default trust store
// (SSL_CERT_FILE and SSL_CERT_DIR name others, as for rediss://).
struct ClientTls {
  std::string ca_file;
  std::string ca_dir;
  std::string cert_file;  // a client certificate (PEM), with key_file
  std::string key_file;
  // --sni: the name sent in SNI (and Host:) and checked against the
  // certificate instead of the endpoint's host, which is still the one
  // connected to (libcurl's CURLOPT_CONNECT_TO). Empty: the host.
  std::string sni;
  bool insecure = false;
};

struct ClientOptions {
  // "http://host:port", "https://host:port" or "host:port" (http), tried in
  // this order; all of one scheme.
  std::vector<std::string> endpoints;
  ClientTls tls;  // for https:// endpoints
  // With a user, every call carries a token from /v3/auth/authenticate;
  // a token the server calls invalid (expired) is renewed once per call.
  std::string user;
  std::string password;
  // Bounds one attempt on one endpoint, so that a member that accepts
  // connections but never answers (stopped, partitioned) lets the next
  // endpoint be tried before the call's deadline. Zero: no bound of its
  // own, the attempt may use the whole deadline.
  std::chrono::milliseconds attempt_timeout{0};
  // When this fd becomes readable (a signalfd, the read end of a pipe),
  // every blocking call returns ErrorKind::interrupted at once. The fd is
  // only polled, never read. -1: none.
  int interrupt_fd = -1;
};

// Counters for tests and --verbose: how much network work the calls cost.
struct ClientStats {
  uint64_t requests = 0;     // HTTP requests sent (retries included)
  uint64_t connections = 0;  // TCP connections opened
};

class Watch;

// A client for etcd's v3 API over its JSON gateway (grpc-gateway on the
// client port, "POST /v3/..."), on libcurl's multi interface so that every
// call waits in one poll(2) on the connection and the interrupt fd, bounded
// by its deadline. Connections are kept alive and reused, one per endpoint.
//
// Endpoint choice: a call starts at the endpoint that answered last and
// moves to the next one (in order, wrapping) when an endpoint cannot be
// reached, breaks the connection, times out its attempt, or answers that it
// is unavailable (no leader, leader changed: gRPC code 14). A request that
// may have reached the server is sent again on the next endpoint, so only
// calls that are safe to repeat should rely on that (a txn guarded by a
// compare; a put of the same value).
//
// Errors: io (unreachable, connection broken), timeout (deadline passed),
// interrupted, auth (bad credentials, permission denied), protocol (the
// peer does not speak etcd's JSON gateway), busy (unavailable on every
// endpoint tried: no leader, leader changed), server (any other etcd error);
// messages are one line and name the endpoint.
//
// Not thread-safe: one Client per thread. Move-only.
class Client {
 public:
  // Fails (ErrorKind::config) on an empty list or a bad endpoint; makes no
  // connection.
  [[nodiscard]] static util::Result<Client> create(ClientOptions options);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  util::Result<RangeResponse> range(const RangeRequest& req,
                                    util::Deadline deadline);
  util::Result<PutResponse> put(const PutRequest& req, util::Deadline deadline);
  util::Result<DeleteRangeResponse> delete_range(const DeleteRangeRequest& req,
                                                 util::Deadline deadline);
  util::Result<TxnResponse> txn(const TxnRequest& req, util::Deadline deadline);

  util::Result<LeaseGrantResponse> lease_grant(std::chrono::seconds ttl,
                                               util::Deadline deadline);
  // One keep-alive (the gateway answers one per POST). ttl_s <= 0 in the
  // reply: the lease is gone.
  util::Result<LeaseKeepAliveResponse> lease_keep_alive(
      int64_t id, util::Deadline deadline);
  // Revoking a lease that does not exist is ErrorKind::server ("requested
  // lease not found").
  util::Status lease_revoke(int64_t id, util::Deadline deadline);
  util::Result<LeaseTimeToLiveResponse> lease_time_to_live(
      int64_t id, bool keys, util::Deadline deadline);

  // The member's status; also a cheap health check of one endpoint.
  util::Result<StatusResponse> status(util::Deadline deadline);

  // Opens a watch stream and waits until the server confirms it (its
  // "created" message), so that every change after the return is reported.
  // A watch the server refuses (permission denied) is an error.
  util::Result<Watch> watch(const WatchRequest& req, util::Deadline deadline);

  // Replaces ClientOptions::interrupt_fd for later calls and watches.
  void set_interrupt_fd(int fd);
  // Replaces ClientOptions::attempt_timeout for later calls.
  void set_attempt_timeout(std::chrono::milliseconds timeout);

  // The endpoint the next call tries first.
  const std::string& current_endpoint() const;
  // The status of exactly the member named `endpoint` (as Watch::endpoint()
  // gives it), bounded by the attempt timeout, with no other endpoint tried
  // and current_endpoint() left as it is: a liveness check of the member a
  // watch stream is on. The member answers it itself, without consensus,
  // so an election elsewhere does not fail it. An unknown name: config.
  util::Result<StatusResponse> status_at(const std::string& endpoint,
                                         util::Deadline deadline);
  // One keep-alive of lease `id` on exactly the member named `endpoint`,
  // as status_at(). A follower forwards it to its leader (etcd's
  // LeaseRenew), so it fails (timeout, busy) on a member that is stopped,
  // cut off from its peers or without a leader: a liveness check of a
  // watch stream's member that renews the lease at the same time.
  util::Result<LeaseKeepAliveResponse> lease_keep_alive_at(
      const std::string& endpoint, int64_t id, util::Deadline deadline);
  ClientStats stats() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// One watch stream: a long-lived POST /v3/watch whose chunked reply carries
// one JSON message per line, parsed as it arrives. Owns its own connection.
// It requires a leader (the gateway's "Grpc-Metadata-hasleader: true"
// header, etcd's clientv3.WithRequireLeader): a member that has had no
// leader for three election timeouts (cut off from its peers) ends the
// stream with "no leader" (busy) instead of keeping it open in silence.
// Not thread-safe; move-only. Destroying it closes the stream.
class Watch {
 public:
  Watch(Watch&&) noexcept;
  Watch& operator=(Watch&&) noexcept;
  ~Watch();

  // Blocks until the next message, the deadline (timeout), the interrupt fd
  // (interrupted) or the end of the stream (io). A message with canceled
  // set ends the watch; further calls fail with io.
  util::Result<WatchResponse> next(util::Deadline deadline);

  // The endpoint the stream is connected to.
  const std::string& endpoint() const;

  class Impl;

 private:
  friend class Client;
  explicit Watch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace godislock::etcd
