// SPDX-License-Identifier: MIT
#include "config/url.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using godislock::config::Endpoint;
using godislock::config::endpoint_problem;
using godislock::config::k_max_db;
using godislock::config::parse_url;

Endpoint parse_ok(const std::string& url) {
  std::string why;
  auto ep = parse_url(url, &why);
  EXPECT_TRUE(ep.has_value()) << "'" << url << "' rejected: " << why;
  return ep.value_or(Endpoint{});
}

// Returns the reason for rejecting url ("" and a failure if accepted).
std::string parse_bad(const std::string& url) {
  std::string why;
  auto ep = parse_url(url, &why);
  EXPECT_FALSE(ep.has_value()) << "'" << url << "' accepted";
  EXPECT_FALSE(why.empty()) << "no reason given for '" << url << "'";
  return why;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Url, HostOnlyGetsDefaults) {
  Endpoint ep = parse_ok("redis://example.com");
  EXPECT_EQ(ep.kind, Endpoint::Kind::tcp);
  EXPECT_EQ(ep.host, "example.com");
  EXPECT_EQ(ep.port, 6379);
  EXPECT_EQ(ep.db, 0);
  EXPECT_EQ(ep.user, "");
  EXPECT_EQ(ep.password, "");
  EXPECT_FALSE(ep.password_in_url);
}

TEST(Url, HostAndPort) {
  Endpoint ep = parse_ok("redis://127.0.0.1:6380");
  EXPECT_EQ(ep.host, "127.0.0.1");
  EXPECT_EQ(ep.port, 6380);
  EXPECT_EQ(parse_ok("redis://h:1").port, 1);
  EXPECT_EQ(parse_ok("redis://h:65535").port, 65535);
}

TEST(Url, UserAndPassword) {
  Endpoint ep = parse_ok("redis://alice:s3cret@db.local:7000");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "s3cret");
  EXPECT_TRUE(ep.password_in_url);
  EXPECT_EQ(ep.host, "db.local");
  EXPECT_EQ(ep.port, 7000);
}

TEST(Url, PasswordWithoutUser) {
  Endpoint ep = parse_ok("redis://:s3cret@host");
  EXPECT_EQ(ep.user, "");
  EXPECT_EQ(ep.password, "s3cret");
  EXPECT_TRUE(ep.password_in_url);
}

TEST(Url, UserWithEmptyPasswordHasNoPassword) {
  Endpoint ep = parse_ok("redis://alice:@host");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "");
  EXPECT_FALSE(ep.password_in_url);
}

TEST(Url, BarePasswordForm) {
  // redis-cli's redis://PASSWORD@host: a lone userinfo word is a password.
  Endpoint ep = parse_ok("redis://secret@host");
  EXPECT_EQ(ep.user, "");
  EXPECT_EQ(ep.password, "secret");
  EXPECT_TRUE(ep.password_in_url);
  EXPECT_EQ(ep.host, "host");
}

TEST(Url, PasswordMayContainAtSign) {
  Endpoint ep = parse_ok("redis://alice:p@ss@host:6380");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "p@ss");
  EXPECT_EQ(ep.host, "host");
  EXPECT_EQ(ep.port, 6380);
}

TEST(Url, PercentDecodesUserAndPassword) {
  Endpoint ep = parse_ok("redis://al%69ce%40corp:p%3Aw%2fd%25%20x@host");
  EXPECT_EQ(ep.user, "alice@corp");
  EXPECT_EQ(ep.password, "p:w/d% x");
  Endpoint bare = parse_ok("redis://se%40cr%3At@host");
  EXPECT_EQ(bare.password, "se@cr:t");
  EXPECT_EQ(bare.user, "");
}

TEST(Url, Ipv6InBrackets) {
  Endpoint ep = parse_ok("redis://[::1]");
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.port, 6379);
  Endpoint with_port = parse_ok("redis://[fe80::1:2]:6390/4");
  EXPECT_EQ(with_port.host, "fe80::1:2");
  EXPECT_EQ(with_port.port, 6390);
  EXPECT_EQ(with_port.db, 4);
  Endpoint with_auth = parse_ok("redis://u:pw@[::1]:7001");
  EXPECT_EQ(with_auth.host, "::1");
  EXPECT_EQ(with_auth.port, 7001);
  EXPECT_EQ(with_auth.password, "pw");
}

TEST(Url, Ipv6WithoutBracketsIsAnError) {
  std::string why = parse_bad("redis://::1");
  EXPECT_TRUE(contains(why, "bracket")) << why;
  parse_bad("redis://fe80::1:6379");
}

TEST(Url, MalformedBrackets) {
  parse_bad("redis://[::1");
  parse_bad("redis://[::1]6379");
  parse_bad("redis://[::1]:");
  parse_bad("redis://[]:6379");
}

TEST(Url, BadPorts) {
  std::string why = parse_bad("redis://host:0");
  EXPECT_TRUE(contains(why, "port")) << why;
  why = parse_bad("redis://host:65536");
  EXPECT_TRUE(contains(why, "65536")) << why;
  why = parse_bad("redis://host:abc");
  EXPECT_TRUE(contains(why, "abc")) << why;
  parse_bad("redis://host:");
  parse_bad("redis://host:-1");
  parse_bad("redis://host:99999999999999999999");
  parse_bad("redis://host:6379x");
}

TEST(Url, DatabaseInPath) {
  EXPECT_EQ(parse_ok("redis://host/3").db, 3);
  EXPECT_EQ(parse_ok("redis://host:6380/15").db, 15);
  EXPECT_EQ(parse_ok("redis://host/0").db, 0);
  EXPECT_EQ(parse_ok("redis://host/" + std::to_string(k_max_db)).db, k_max_db);
}

TEST(Url, DatabaseOutOfRangeOrMalformed) {
  std::string why = parse_bad("redis://host/99999999999");
  EXPECT_TRUE(contains(why, "database")) << why;
  parse_bad("redis://host/" + std::to_string(k_max_db + 1));
  parse_bad("redis://host/x");
  parse_bad("redis://host/-1");
  parse_bad("redis://host/1/2");
}

TEST(Url, UnknownScheme) {
  std::string why = parse_bad("http://host:6379");
  EXPECT_TRUE(contains(why, "http")) << why;
  parse_bad("REDIS://host");
  parse_bad("redis+tls://host");
}

TEST(Url, TlsScheme) {
  std::string why;
  auto ep = parse_url("rediss://u:pw@cache.example:6380/2", &why);
  ASSERT_TRUE(ep) << why;
  EXPECT_TRUE(ep->tls.enabled);
  EXPECT_EQ(ep->host, "cache.example");
  EXPECT_EQ(ep->port, 6380);
  EXPECT_EQ(ep->user, "u");
  EXPECT_EQ(ep->password, "pw");
  EXPECT_EQ(ep->db, 2);
  EXPECT_EQ(ep->redacted(), "rediss://u:***@cache.example:6380/2");
  // Verification stays on unless asked otherwise.
  EXPECT_FALSE(ep->tls.insecure);
  EXPECT_TRUE(ep->tls.ca_file.empty());

  auto bare = parse_url("rediss://secret@[::1]", &why);
  ASSERT_TRUE(bare) << why;
  EXPECT_EQ(bare->password, "secret");
  EXPECT_EQ(bare->port, 6379);
  EXPECT_EQ(bare->redacted(), "rediss://:***@[::1]:6379");

  auto plain = parse_url("redis://host", &why);
  ASSERT_TRUE(plain) << why;
  EXPECT_FALSE(plain->tls.enabled);
  EXPECT_EQ(plain->redacted(), "redis://host:6379");
  parse_bad("rediss://");
  parse_bad("rediss:///tmp/x.sock");
}

TEST(Url, TlsOverUnixSocketIsAConfigurationProblem) {
  std::string why;
  auto ep = parse_url("unix:///run/redis.sock", &why);
  ASSERT_TRUE(ep) << why;
  EXPECT_EQ(endpoint_problem(*ep), std::nullopt);
  ep->tls.enabled = true;
  auto problem = endpoint_problem(*ep);
  ASSERT_TRUE(problem);
  EXPECT_EQ(*problem,
            "TLS is not available over a unix socket (unix:///run/redis.sock)");
  auto tcp = parse_url("rediss://host", &why);
  ASSERT_TRUE(tcp) << why;
  EXPECT_EQ(endpoint_problem(*tcp), std::nullopt);
}

TEST(Url, MissingScheme) {
  std::string why = parse_bad("localhost:6379");
  EXPECT_TRUE(contains(why, "scheme")) << why;
  parse_bad("");
  parse_bad("redis:/host");
}

TEST(Url, MissingHost) {
  parse_bad("redis://");
  parse_bad("redis://:6379");
  parse_bad("redis://u:pw@");
  parse_bad("redis:///3");
}

TEST(Url, MalformedPercentEncoding) {
  parse_bad("redis://u:%G1@host");
  parse_bad("redis://u:pw%4@host");
  parse_bad("redis://u:pw%@host");
  parse_bad("redis://%zzuser:pw@host");
  parse_bad("redis://bare%4@host");
  parse_bad("redis://ho%st");
  parse_bad("unix:///tmp/x%4");
}

TEST(Url, InvalidHostCharacters) {
  parse_bad("redis://ho st");
  parse_bad("redis://host%0a");
}

TEST(Url, UnixSocket) {
  Endpoint ep = parse_ok("unix:///tmp/x.sock");
  EXPECT_EQ(ep.kind, Endpoint::Kind::unix_socket);
  EXPECT_EQ(ep.path, "/tmp/x.sock");
  EXPECT_EQ(ep.db, 0);
  EXPECT_FALSE(ep.password_in_url);
}

TEST(Url, UnixSocketWithDatabase) {
  Endpoint ep = parse_ok("unix:///tmp/x.sock?db=2");
  EXPECT_EQ(ep.kind, Endpoint::Kind::unix_socket);
  EXPECT_EQ(ep.path, "/tmp/x.sock");
  EXPECT_EQ(ep.db, 2);
  parse_bad("unix:///tmp/x.sock?db=99999999999");
  parse_bad("unix:///tmp/x.sock?db=x");
  parse_bad("unix:///tmp/x.sock?db=");
}

TEST(Url, UnixSocketPercentDecodesPath) {
  EXPECT_EQ(parse_ok("unix:///tmp/my%20dir/r.sock").path, "/tmp/my dir/r.sock");
}

TEST(Url, UnixSocketRelativePathIsAnError) {
  std::string why = parse_bad("unix://tmp/x.sock");
  EXPECT_TRUE(contains(why, "absolute")) << why;
  parse_bad("unix://");
  parse_bad("unix://x.sock");
}

TEST(Url, UnixSocketBadQuery) {
  std::string why = parse_bad("unix:///tmp/x.sock?foo=1");
  EXPECT_TRUE(contains(why, "foo")) << why;
  parse_bad("unix:///tmp/x.sock?db");
  parse_bad("unix:///tmp/x.sock?password=x");
}

TEST(Url, NullReasonPointerIsAllowed) {
  EXPECT_FALSE(parse_url("http://x", nullptr).has_value());
  EXPECT_TRUE(parse_url("redis://x", nullptr).has_value());
}

TEST(Url, RedactedShowsStarsNeverThePassword) {
  struct Case {
    std::string url;
    std::string password;
  };
  std::vector<Case> cases = {
      {"redis://alice:Pw0rdA1@host:6380/2", "Pw0rdA1"},
      {"redis://:Pw0rdB2@host", "Pw0rdB2"},
      {"redis://Pw0rdC3@host", "Pw0rdC3"},
      {"redis://u:Pw%40rdD4@host", "Pw@rdD4"},
      {"redis://u:p@ssE5@[::1]:7000", "p@ssE5"},
      {"redis://default:hunter2xyz@10.0.0.1:6379/0", "hunter2xyz"},
  };
  for (const auto& c : cases) {
    Endpoint ep = parse_ok(c.url);
    ASSERT_EQ(ep.password, c.password) << c.url;
    std::string r = ep.redacted();
    EXPECT_FALSE(contains(r, c.password)) << c.url << " -> " << r;
    EXPECT_TRUE(contains(r, "***")) << c.url << " -> " << r;
    // The percent-encoded form must not leak either.
    if (c.url.find('%') != std::string::npos) {
      EXPECT_FALSE(contains(r, "Pw%40rdD4")) << r;
    }
  }
}

TEST(Url, RedactedForms) {
  EXPECT_EQ(parse_ok("redis://host").redacted(), "redis://host:6379");
  EXPECT_EQ(parse_ok("redis://host:6380/3").redacted(), "redis://host:6380/3");
  EXPECT_EQ(parse_ok("redis://alice:pw@host").redacted(),
            "redis://alice:***@host:6379");
  EXPECT_EQ(parse_ok("redis://pw@host").redacted(), "redis://:***@host:6379");
  EXPECT_EQ(parse_ok("redis://alice:@host").redacted(),
            "redis://alice@host:6379");
  EXPECT_EQ(parse_ok("redis://[::1]:7000").redacted(), "redis://[::1]:7000");
  EXPECT_EQ(parse_ok("unix:///tmp/x.sock").redacted(), "unix:///tmp/x.sock");
  EXPECT_EQ(parse_ok("unix:///tmp/x.sock?db=2").redacted(),
            "unix:///tmp/x.sock?db=2");
}

TEST(Url, RedactedOfManualEndpointWithPasswordNotFromUrl) {
  // A password from --password-file or the environment is not in the URL,
  // so the URL shown carries no marker and certainly not the secret.
  Endpoint ep;
  ep.host = "h";
  ep.password = "fromfileSecret";
  EXPECT_EQ(ep.redacted(), "redis://h:6379");
}

TEST(Url, ReasonNeverContainsPassword) {
  const std::string pw = "Zq9SecretPw";
  std::vector<std::string> bad = {
      "redis://u:" + pw + "@host:abc", "redis://u:" + pw + "@host:0",
      "redis://u:" + pw + "@host/xyz", "redis://u:" + pw + "@::1",
      "redis://u:" + pw + "@[::1]x",   "redis://u:" + pw + "@[::1",
      "redis://u:" + pw + "@",         "redis://u:" + pw + "%G1@host",
      "redis://" + pw + "%4@host",     "redis://" + pw + "@ho st",
      "http://u:" + pw + "@host",
  };
  for (const auto& url : bad) {
    std::string why;
    EXPECT_FALSE(parse_url(url, &why).has_value()) << url;
    EXPECT_FALSE(why.empty()) << url;
    EXPECT_FALSE(contains(why, pw)) << url << " -> " << why;
  }
}

// ------------------------------------------------------------------ etcd

TEST(Url, EtcdSingleMemberDefaultsToPort2379) {
  Endpoint ep = parse_ok("etcd://10.0.0.5");
  EXPECT_EQ(ep.kind, Endpoint::Kind::etcd);
  ASSERT_EQ(ep.members.size(), 1u);
  EXPECT_EQ(ep.members[0].host, "10.0.0.5");
  EXPECT_EQ(ep.members[0].port, 2379);
  EXPECT_EQ(ep.host, "10.0.0.5");
  EXPECT_EQ(ep.port, 2379);
  EXPECT_FALSE(ep.tls.enabled);
  EXPECT_EQ(parse_ok("etcd://h:2400/").members.at(0).port, 2400);
}

TEST(Url, EtcdMembersInOrder) {
  Endpoint ep = parse_ok("etcd://a:1,[::1]:2,c");
  ASSERT_EQ(ep.members.size(), 3u);
  EXPECT_EQ(ep.members[0].host, "a");
  EXPECT_EQ(ep.members[0].port, 1);
  EXPECT_EQ(ep.members[1].host, "::1");
  EXPECT_EQ(ep.members[1].port, 2);
  EXPECT_EQ(ep.members[2].host, "c");
  EXPECT_EQ(ep.members[2].port, 2379);
  EXPECT_EQ(ep.redacted(), "etcd://a:1,[::1]:2,c:2379");
}

TEST(Url, EtcdsTurnsTlsOn) {
  Endpoint ep = parse_ok("etcds://h:2379");
  EXPECT_EQ(ep.kind, Endpoint::Kind::etcd);
  EXPECT_TRUE(ep.tls.enabled);
  EXPECT_EQ(ep.redacted(), "etcds://h:2379");
}

TEST(Url, EtcdUserAndPassword) {
  Endpoint ep = parse_ok("etcd://alice:pw%40x@h:1,h:2");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "pw@x");
  EXPECT_TRUE(ep.password_in_url);
  EXPECT_EQ(ep.redacted(), "etcd://alice:***@h:1,h:2");
  // etcd has no password-only login: a lone userinfo is the user name.
  Endpoint bare = parse_ok("etcd://bob@h");
  EXPECT_EQ(bare.user, "bob");
  EXPECT_EQ(bare.password, "");
  EXPECT_FALSE(bare.password_in_url);
  EXPECT_EQ(bare.redacted(), "etcd://bob@h:2379");
}

TEST(Url, EtcdMalformed) {
  EXPECT_TRUE(contains(parse_bad("etcd://"), "missing host"));
  EXPECT_TRUE(contains(parse_bad("etcd://a,,b"), "empty member"));
  EXPECT_TRUE(contains(parse_bad("etcd://a,"), "empty member"));
  EXPECT_TRUE(contains(parse_bad("etcd://a:0"), "port '0'"));
  EXPECT_TRUE(contains(parse_bad("etcd://a:2379,b:x"), "port 'x'"));
  EXPECT_TRUE(contains(parse_bad("etcd://a/0"), "no path"));
  EXPECT_TRUE(contains(parse_bad("etcd://a?x=1"), "no path"));
  EXPECT_TRUE(contains(parse_bad("etcd://::1"), "brackets"));
  parse_bad("etcd://[::1");
  parse_bad("etcd://u:%zz@h");
  std::string why = parse_bad("etcd://u:Zq9SecretPw@a,,b");
  EXPECT_FALSE(contains(why, "Zq9SecretPw")) << why;
}

}  // namespace

namespace {

using godislock::config::SentinelSettings;

std::string hosts_of(const Endpoint& ep) {
  std::string out;
  for (const auto& a : ep.sentinel->sentinels) {
    out += (out.empty() ? "" : ",") + a.host + ":" + std::to_string(a.port);
  }
  return out;
}

TEST(SentinelUrl, SeveralSentinelsAndMaster) {
  Endpoint ep = parse_ok("redis-sentinel://10.0.0.1:26379,s2:26380/mymaster");
  ASSERT_TRUE(ep.sentinel.has_value());
  EXPECT_EQ(hosts_of(ep), "10.0.0.1:26379,s2:26380");
  EXPECT_EQ(ep.sentinel->master, "mymaster");
  EXPECT_EQ(ep.db, 0);
  EXPECT_FALSE(ep.tls.enabled);
  EXPECT_EQ(ep.redacted(), "redis-sentinel://10.0.0.1:26379,s2:26380/mymaster");
}

TEST(SentinelUrl, DefaultPortDbAndIpv6) {
  Endpoint ep = parse_ok("redis-sentinel://s1,[::1]:5000/m/3");
  EXPECT_EQ(hosts_of(ep), "s1:26379,::1:5000");
  EXPECT_EQ(ep.sentinel->master, "m");
  EXPECT_EQ(ep.db, 3);
  EXPECT_EQ(ep.redacted(), "redis-sentinel://s1:26379,[::1]:5000/m/3");
}

TEST(SentinelUrl, CredentialsAreTheMastersAndRedacted) {
  Endpoint ep = parse_ok("redis-sentinel://alice:p%40ss@h:1/grp");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "p@ss");
  EXPECT_TRUE(ep.password_in_url);
  EXPECT_EQ(ep.sentinel->user, "");
  EXPECT_EQ(ep.sentinel->password, "");
  EXPECT_EQ(ep.redacted(), "redis-sentinel://alice:***@h:1/grp");
  EXPECT_FALSE(contains(ep.redacted(), "p@ss"));
}

TEST(SentinelUrl, PercentEncodedMasterName) {
  EXPECT_EQ(parse_ok("redis-sentinel://h/a%40b%2Fc").sentinel->master, "a@b/c");
}

TEST(SentinelUrl, TlsScheme) {
  Endpoint ep = parse_ok("rediss-sentinel://h:1/m");
  EXPECT_TRUE(ep.tls.enabled);
  EXPECT_EQ(ep.redacted(), "rediss-sentinel://h:1/m");
}

TEST(SentinelUrl, Malformed) {
  EXPECT_TRUE(contains(parse_bad("redis-sentinel://h:1"), "missing master"));
  EXPECT_TRUE(contains(parse_bad("redis-sentinel://h:1/"), "missing master"));
  EXPECT_TRUE(contains(parse_bad("redis-sentinel:///m"), "no sentinel"));
  EXPECT_TRUE(
      contains(parse_bad("redis-sentinel://h:1,/m"), "missing sentinel"));
  EXPECT_TRUE(
      contains(parse_bad("redis-sentinel://,h:1/m"), "missing sentinel"));
  EXPECT_TRUE(
      contains(parse_bad("redis-sentinel://h:0/m"), "sentinel port '0'"));
  EXPECT_TRUE(
      contains(parse_bad("redis-sentinel://h:x/m"), "sentinel port 'x'"));
  EXPECT_TRUE(
      contains(parse_bad("redis-sentinel://h:1/m/x"), "database index 'x'"));
  EXPECT_TRUE(
      contains(parse_bad("redis-sentinel://h:1/m%ZZ"), "percent-encoding"));
  EXPECT_TRUE(contains(parse_bad("redis-sentinel://h:1/a b"), "master name"));
  EXPECT_TRUE(contains(parse_bad("redis-sentinel://::1/m"), "brackets"));
  EXPECT_TRUE(contains(parse_bad("redis+sentinel://h/m"), "redis-sentinel://"));
}

}  // namespace

namespace {

TEST(UrlCluster, SeedList) {
  Endpoint ep = parse_ok("redis-cluster://a.example:7000,127.0.0.1:7001,[::1]");
  ASSERT_TRUE(ep.is_cluster());
  ASSERT_EQ(ep.cluster_seeds.size(), 3u);
  EXPECT_EQ(ep.cluster_seeds[0].host, "a.example");
  EXPECT_EQ(ep.cluster_seeds[0].port, 7000);
  EXPECT_EQ(ep.cluster_seeds[1].host, "127.0.0.1");
  EXPECT_EQ(ep.cluster_seeds[1].port, 7001);
  EXPECT_EQ(ep.cluster_seeds[2].host, "::1");
  EXPECT_EQ(ep.cluster_seeds[2].port, 6379);
  // The first seed is also the endpoint's host and port.
  EXPECT_EQ(ep.host, "a.example");
  EXPECT_EQ(ep.port, 7000);
  EXPECT_FALSE(ep.tls.enabled);
  EXPECT_EQ(ep.db, 0);
}

TEST(UrlCluster, OneSeedAndCredentials) {
  Endpoint ep = parse_ok("redis-cluster://locker:s%40cret@h:7000");
  ASSERT_EQ(ep.cluster_seeds.size(), 1u);
  EXPECT_EQ(ep.user, "locker");
  EXPECT_EQ(ep.password, "s@cret");
  EXPECT_TRUE(ep.password_in_url);
  EXPECT_EQ(ep.redacted(), "redis-cluster://locker:***@h:7000");
}

TEST(UrlCluster, TlsScheme) {
  Endpoint ep = parse_ok("rediss-cluster://h1:7000,h2:7001");
  EXPECT_TRUE(ep.is_cluster());
  EXPECT_TRUE(ep.tls.enabled);
  EXPECT_EQ(ep.redacted(), "rediss-cluster://h1:7000,h2:7001");
}

TEST(UrlCluster, PlainUrlsAreNotClusters) {
  EXPECT_FALSE(parse_ok("redis://h:7000").is_cluster());
  EXPECT_FALSE(parse_ok("unix:///tmp/r.sock").is_cluster());
}

TEST(UrlCluster, RedactedListsEverySeed) {
  Endpoint ep = parse_ok("redis-cluster://:pw@[::1]:7000,h:7001");
  EXPECT_EQ(ep.redacted(), "redis-cluster://:***@[::1]:7000,h:7001");
}

TEST(UrlCluster, DatabaseZeroOnly) {
  EXPECT_EQ(parse_ok("redis-cluster://h:7000/0").db, 0);
  EXPECT_EQ(parse_ok("redis-cluster://h:7000/").db, 0);
  EXPECT_TRUE(
      contains(parse_bad("redis-cluster://h:7000/3"), "no database index"));
}

TEST(UrlCluster, Malformed) {
  EXPECT_TRUE(contains(parse_bad("redis-cluster://"), "empty node"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,"), "empty node"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://,h:1"), "empty node"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,,h:2"), "empty node"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,h:0"), "port '0'"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,h:x"), "port 'x'"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,::1:2"), "brackets"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,[::1"), "'['"));
  EXPECT_TRUE(contains(parse_bad("redis-cluster://h:1,h 2:3"), "character"));
  parse_bad("redis-cluster:h:1");
  parse_bad("Redis-Cluster://h:1");
}

TEST(UrlCluster, ReasonNeverContainsPassword) {
  std::string why = parse_bad("redis-cluster://u:hunter2@h:1,h:99999");
  EXPECT_FALSE(contains(why, "hunter2")) << why;
}

}  // namespace
