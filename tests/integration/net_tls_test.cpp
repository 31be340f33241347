// SPDX-License-Identifier: MIT
// TLS (src/net/tls.cpp) under redis::Connection against real redis-server
// processes with throwaway certificates (tests/support/make_tls_certs.sh):
// verification by name and by IP literal, client certificates, and the
// one-line error of each way a TLS connection can fail.
#include "net/tls.hpp"

#include "redis/connection.hpp"
#include "support/redis_server.hpp"
#include "support/time.hpp"
#include "util/fd.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>

namespace godislock::redis {
namespace {

using namespace std::chrono_literals;
using test::RedisServer;
using test::soon;
using test::tls_certs;
using util::ErrorKind;

std::string cert(const std::string& file) { return tls_certs() + "/" + file; }

// rediss://HOST:PORT of `server`, trusting the test CA.
config::Endpoint tls_endpoint(const RedisServer& server,
                              const std::string& host = "localhost") {
  config::Endpoint ep = server.endpoint();
  ep.host = host;
  ep.tls.enabled = true;
  ep.tls.ca_file = cert("ca.crt");
  return ep;
}

// PINGs over a new connection; "PONG" or the error's message.
std::string ping(const config::Endpoint& ep) {
  auto c = Connection::open(ep, soon());
  if (!c) {
    return c.error().message;
  }
  auto r = c->command({"PING"}, soon());
  if (!r) {
    return r.error().message;
  }
  return r->str;
}

// The error of connecting to `ep` (which must fail at open).
util::Error open_error(const config::Endpoint& ep,
                       util::Deadline deadline = soon()) {
  auto c = Connection::open(ep, deadline);
  if (c) {
    ADD_FAILURE() << "connected to " << ep.redacted();
    return util::Error{ErrorKind::io, ""};
  }
  return c.error();
}

#define GODISLOCK_REQUIRE_TLS_SERVER(server)                 \
  do {                                                       \
    if (tls_certs().empty()) {                               \
      GTEST_SKIP() << "openssl could not make certificates"; \
    }                                                        \
    GODISLOCK_REQUIRE_SERVER(server);                        \
  } while (false)

TEST(NetTls, ConnectsByNameWithTheCaFile) {
  RedisServer server(RedisServer::Tls{});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server);
  EXPECT_EQ(ep.redacted(), fmt::format("rediss://localhost:{}", server.port()));
  EXPECT_EQ(ping(ep), "PONG");
}

TEST(NetTls, ConnectsByIpLiteral) {
  RedisServer server(RedisServer::Tls{});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  EXPECT_EQ(ping(tls_endpoint(server, "127.0.0.1")), "PONG");
}

TEST(NetTls, ConnectsWithTheCaDirectory) {
  RedisServer server(RedisServer::Tls{});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  // A directory as c_rehash(1) leaves it: the CA under its subject hash.
  std::string dir = server.dir() + "/cadir";
  std::filesystem::create_directory(dir);
  std::string cmd =
      fmt::format("ln -s '{}' \"{}/$(openssl x509 -hash -noout -in '{}').0\"",
                  cert("ca.crt"), dir, cert("ca.crt"));
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  config::Endpoint ep = tls_endpoint(server);
  ep.tls.ca_file.clear();
  ep.tls.ca_dir = dir;
  EXPECT_EQ(ping(ep), "PONG");
}

TEST(NetTls, ClientCertificateWhenTheServerWantsOne) {
  RedisServer server(RedisServer::Tls{"server", "yes"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server);
  ep.tls.cert_file = cert("client.crt");
  ep.tls.key_file = cert("client.key");
  EXPECT_EQ(ping(ep), "PONG");
}

TEST(NetTls, ClientCertificateOptional) {
  RedisServer server(RedisServer::Tls{"server", "optional"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  EXPECT_EQ(ping(tls_endpoint(server)), "PONG");
}

TEST(NetTls, MissingClientCertificateIsNamed) {
  RedisServer server(RedisServer::Tls{"server", "yes"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server);
  // With TLS 1.3 the server refuses after the client's handshake is done:
  // at open (TLS 1.2) or at the first reply.
  auto c = Connection::open(ep, soon());
  util::Error e{ErrorKind::io, ""};
  std::string prefix;
  if (!c) {
    e = c.error();
    prefix = "cannot connect to ";
  } else {
    auto r = c->command({"PING"}, soon());
    ASSERT_FALSE(r) << "PING answered " << r->str;
    e = r.error();
  }
  // A refusal, not an outage: retrying with the same settings cannot help.
  EXPECT_EQ(e.kind, ErrorKind::auth);
  EXPECT_EQ(e.message,
            fmt::format("{}rediss://localhost:{}: TLS: the server requires "
                        "a client certificate",
                        prefix, server.port()));
}

TEST(NetTls, UnknownCa) {
  RedisServer server(RedisServer::Tls{});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server);
  ep.tls.ca_file = cert("other-ca.crt");
  util::Error e = open_error(ep);
  EXPECT_EQ(e.kind, ErrorKind::io);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://localhost:{}: TLS "
                        "handshake failed: server certificate not trusted: "
                        "self-signed certificate in certificate chain "
                        "(CN=godislock-test-ca)",
                        server.port()));
}

TEST(NetTls, SelfSignedCertificate) {
  RedisServer server(RedisServer::Tls{"self"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  util::Error e = open_error(tls_endpoint(server));
  EXPECT_EQ(e.kind, ErrorKind::io);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://localhost:{}: TLS "
                        "handshake failed: server certificate not trusted: "
                        "self-signed certificate (CN=localhost)",
                        server.port()));
}

TEST(NetTls, HostNameMismatch) {
  RedisServer server(RedisServer::Tls{"evil"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  util::Error e = open_error(tls_endpoint(server));
  EXPECT_EQ(e.kind, ErrorKind::io);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://localhost:{}: TLS "
                        "handshake failed: server certificate is not for "
                        "'localhost' (CN=evil.example)",
                        server.port()));
}

TEST(NetTls, IpAddressMismatch) {
  RedisServer server(RedisServer::Tls{"evil"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  util::Error e = open_error(tls_endpoint(server, "127.0.0.1"));
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://127.0.0.1:{}: TLS "
                        "handshake failed: server certificate is not for "
                        "'127.0.0.1' (CN=evil.example)",
                        server.port()));
}

TEST(NetTls, ExpiredCertificate) {
  RedisServer server(RedisServer::Tls{"expired"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  util::Error e = open_error(tls_endpoint(server));
  EXPECT_EQ(e.kind, ErrorKind::io);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://localhost:{}: TLS "
                        "handshake failed: server certificate has expired "
                        "(not valid after 2020-01-02 00:00:00 UTC; "
                        "CN=localhost)",
                        server.port()));
}

TEST(NetTls, NotYetValidCertificate) {
  RedisServer server(RedisServer::Tls{"future"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  util::Error e = open_error(tls_endpoint(server));
  EXPECT_EQ(e.kind, ErrorKind::io);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://localhost:{}: TLS "
                        "handshake failed: server certificate is not yet "
                        "valid (not valid before 2099-01-01 00:00:00 UTC; "
                        "CN=localhost)",
                        server.port()));
}

TEST(NetTls, SniOverrideIsTheNameChecked) {
  RedisServer server(RedisServer::Tls{"evil"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server, "127.0.0.1");
  ep.tls.sni = "evil.example";
  EXPECT_EQ(ping(ep), "PONG");
  ep.tls.sni = "other.example";
  util::Error e = open_error(ep);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://127.0.0.1:{}: TLS "
                        "handshake failed: server certificate is not for "
                        "'other.example' (CN=evil.example)",
                        server.port()));
}

TEST(NetTls, InsecureSkipsVerification) {
  RedisServer server(RedisServer::Tls{"evil"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server);
  ep.tls.ca_file = cert("other-ca.crt");
  EXPECT_NE(ping(ep), "PONG");
  ep.tls.insecure = true;
  EXPECT_EQ(ping(ep), "PONG");
}

TEST(NetTls, PlaintextServerOnATlsUrl) {
  RedisServer server;
  GODISLOCK_REQUIRE_SERVER(server);
  if (tls_certs().empty()) {
    GTEST_SKIP() << "openssl could not make certificates";
  }
  config::Endpoint ep = tls_endpoint(server, "127.0.0.1");
  // Redis reads the ClientHello as an inline command: it answers with an
  // error when the hello's random bytes hold a newline, else it waits for
  // one.
  util::Error e = open_error(ep, util::Deadline::after(1s));
  std::string start =
      fmt::format("cannot connect to rediss://127.0.0.1:{}: ", server.port());
  if (e.kind == ErrorKind::timeout) {
    EXPECT_EQ(e.message, start +
                             "TLS handshake timed out (no answer: the server "
                             "may not speak TLS)");
  } else {
    EXPECT_EQ(e.kind, ErrorKind::io);
    EXPECT_EQ(e.message.rfind(start + "TLS handshake failed: the server does "
                                      "not speak TLS (",
                              0),
              0u)
        << e.message;
  }
}

TEST(NetTls, TlsServerOnAPlaintextUrl) {
  RedisServer server(RedisServer::Tls{});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server, "127.0.0.1");
  ep.tls = config::TlsSettings{};
  auto c = Connection::open(ep, soon());
  ASSERT_TRUE(c) << c.error().message;  // nothing is said before a command
  auto r = c->command({"PING"}, soon());
  ASSERT_FALSE(r);
  EXPECT_EQ(
      r.error().kind == ErrorKind::io || r.error().kind == ErrorKind::protocol,
      true);
  std::string tail = "; the server may require TLS (use rediss://)";
  EXPECT_EQ(r.error().message.rfind(
                fmt::format("redis://127.0.0.1:{}: ", server.port()), 0),
            0u)
      << r.error().message;
  ASSERT_GE(r.error().message.size(), tail.size());
  EXPECT_EQ(r.error().message.substr(r.error().message.size() - tail.size()),
            tail);
}

TEST(NetTls, HandshakeTimeout) {
  if (tls_certs().empty()) {
    GTEST_SKIP() << "openssl could not make certificates";
  }
  // A listener that never accepts: the kernel completes the TCP handshake
  // from the backlog, and nobody ever answers the ClientHello.
  util::Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a),
            0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  config::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = ntohs(a.sin_port);
  ep.tls.enabled = true;
  ep.tls.ca_file = cert("ca.crt");
  util::Error e =
      open_error(ep, util::Deadline::after(std::chrono::milliseconds(300)));
  EXPECT_EQ(e.kind, ErrorKind::timeout);
  EXPECT_EQ(e.message,
            fmt::format("cannot connect to rediss://127.0.0.1:{}: TLS "
                        "handshake timed out (no answer: the server may not "
                        "speak TLS)",
                        ep.port));
}

TEST(NetTls, KeyReadableByOthersGivesAWarning) {
  if (tls_certs().empty()) {
    GTEST_SKIP() << "openssl could not make certificates";
  }
  char tmpl[] = "/tmp/godislock-key.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string key = std::string(tmpl) + "/client.key";
  std::filesystem::copy_file(cert("client.key"), key);
  config::Endpoint ep;
  ep.host = "localhost";
  ep.tls.enabled = true;
  ep.tls.cert_file = cert("client.crt");
  ep.tls.key_file = key;
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  auto quiet = tls_context(ep);
  ASSERT_TRUE(quiet) << quiet.error().message;
  EXPECT_EQ(quiet.value()->warning(), "");
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto loud = tls_context(ep);
  ASSERT_TRUE(loud) << loud.error().message;
  EXPECT_EQ(loud.value()->warning(),
            fmt::format("UNPROTECTED PRIVATE KEY FILE: permissions 0644 for "
                        "'{}' are too open; other users may read it (chmod "
                        "600 it)",
                        key));
  std::filesystem::remove_all(tmpl);
}

TEST(NetTls, UnusableSettingsAreConfigurationErrors) {
  if (tls_certs().empty()) {
    GTEST_SKIP() << "openssl could not make certificates";
  }
  config::Endpoint ep;
  ep.host = "localhost";
  ep.port = 6380;
  ep.tls.enabled = true;
  ep.tls.ca_file = tls_certs() + "/missing.crt";
  auto r = tls_context(ep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::config);
  EXPECT_EQ(r.error().message,
            fmt::format("cannot connect to rediss://localhost:6380: TLS: "
                        "cannot load CA file '{}': No such file or directory",
                        ep.tls.ca_file));

  ep.tls.ca_file = cert("ca.crt");
  ep.tls.cert_file = cert("client.crt");
  ep.tls.key_file = cert("server.key");
  r = tls_context(ep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::config);
  EXPECT_EQ(r.error().message,
            fmt::format("cannot connect to rediss://localhost:6380: TLS: "
                        "private key '{}' does not match client certificate "
                        "'{}'",
                        ep.tls.key_file, ep.tls.cert_file));

  config::Endpoint unix_ep;
  unix_ep.kind = config::Endpoint::Kind::unix_socket;
  unix_ep.path = "/run/redis.sock";
  unix_ep.tls.enabled = true;
  auto c = Connection::open(unix_ep, soon());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::config);
  EXPECT_EQ(c.error().message,
            "TLS is not available over a unix socket (unix:///run/redis.sock)");
}

TEST(NetTls, EveryDescriptorIsCloseOnExec) {
  RedisServer server(RedisServer::Tls{"server", "yes"});
  GODISLOCK_REQUIRE_TLS_SERVER(server);
  config::Endpoint ep = tls_endpoint(server);
  ep.tls.ca_dir = tls_certs();  // a lookup directory as well as the file
  ep.tls.cert_file = cert("client.crt");
  ep.tls.key_file = cert("client.key");
  auto open_fds = [] {
    std::set<int> fds;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
      fds.insert(std::stoi(entry.path().filename().string()));
    }
    // Less the directory's own descriptor, closed by now.
    for (auto it = fds.begin(); it != fds.end();) {
      it = ::fcntl(*it, F_GETFD) < 0 ? fds.erase(it) : std::next(it);
    }
    return fds;
  };
  std::set<int> before = open_fds();  // inherited ones are not ours
  auto c = Connection::open(ep, soon());
  ASSERT_TRUE(c) << c.error().message;
  auto r = c->command({"PING"}, soon());
  ASSERT_TRUE(r) << r.error().message;
  // Whatever the connection (and OpenSSL) opened is closed or marked
  // close-on-exec: nothing of it reaches the supervised command.
  int checked = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = std::stoi(entry.path().filename().string());
    if (before.count(fd) != 0) {
      continue;
    }
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) {
      continue;  // the directory_iterator's own descriptor, now closed
    }
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (target.string().rfind("socket:", 0) == 0) {
      ++checked;
    }
    EXPECT_NE(flags & FD_CLOEXEC, 0) << "fd " << fd << " -> " << target;
  }
  EXPECT_GE(checked, 1);
}

}  // namespace
}  // namespace godislock::redis
