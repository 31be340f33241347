// SPDX-License-Identifier: MIT
#include "redis/cluster.hpp"

#include "backend/cluster_backend.hpp"
#include "backend/redis_backend.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using godislock::redis::ClusterNode;
using godislock::redis::key_slot;
using godislock::redis::parse_cluster_shards;
using godislock::redis::parse_cluster_slots;
using godislock::redis::parse_redirect;
using godislock::redis::Reply;
using godislock::redis::SlotMap;

Reply str(const std::string& s) {
  Reply r;
  r.type = Reply::Type::string;
  r.str = s;
  return r;
}

Reply num(long long n) {
  Reply r;
  r.type = Reply::Type::integer;
  r.integer = n;
  return r;
}

Reply arr(std::vector<Reply> items) {
  Reply r;
  r.type = Reply::Type::array;
  r.elements = std::move(items);
  return r;
}

// Slots as CLUSTER KEYSLOT gives them on Redis 7.0.15, and the example of
// the cluster specification (CRC16 of "123456789" is 0x31C3).
TEST(KeySlot, KnownValues) {
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("hello"), 866);
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
  EXPECT_EQ(key_slot(""), 0);
}

TEST(KeySlot, HashTags) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("user1000"));
  // The first '{' and the next '}': the tag of "foo{{bar}}zap" is "{bar".
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  // An empty tag, or none closed: the whole key.
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot(std::string("foo{}{bar}")));
  EXPECT_NE(key_slot("foo{bar"), key_slot("bar"));
}

// Every key and channel of a lock (ARCHITECTURE.md lists them) hashes to
// the slot of its lock key, for any name the cluster backend accepts; a
// name or prefix that would split them is refused by name.
TEST(KeySlot, EveryKeyAndChannelOfALockShareASlot) {
  const std::vector<std::string> names = {
      "job",   "a{b}c",      "{x}",  "x}",        "{",
      "}{",    "a{}b",       "{{}}", "naïve-ünï", "\xe6\x97\xa5\xe6\x9c\xac",
      "a:b:c", "with space", "}}{",  "a}b{c}d"};
  const std::vector<std::string> prefixes = {"godislock:", "t:",  "",
                                             "p{q}:",      "p{:", "}"};
  const std::string token = "0123456789abcdef0123456789abcdef";
  for (const auto& prefix : prefixes) {
    for (const auto& name : names) {
      auto problem = godislock::backend::cluster_name_problem(prefix, name);
      auto k = godislock::backend::redis_keys(prefix, name);
      std::vector<std::string> all = {
          k.lock,
          k.fence,
          k.queue,
          k.channel,
          k.lock + ":limit",
          k.lock + ":readers",
          k.lock + ":slot:2",
          k.lock + ":slot:1000",
          k.lock + ":holder:" + token,
          k.lock + ":waiter:" + token,
          k.lock + ":acquired",
          godislock::backend::redis_wake_channel(k, token)};
      bool one_slot = true;
      for (const auto& key : all) {
        one_slot = one_slot && key_slot(key) == key_slot(k.lock);
      }
      EXPECT_EQ(one_slot, !problem.has_value())
          << "prefix '" << prefix << "' name '" << name << "'";
    }
  }
  EXPECT_TRUE(godislock::backend::cluster_name_problem("g:", "}x"));
  EXPECT_TRUE(godislock::backend::cluster_name_problem("p{}:", "job"));
  EXPECT_FALSE(godislock::backend::cluster_name_problem("g:", "x}"));
}

TEST(Redirect, Parses) {
  auto m = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->ask);
  EXPECT_EQ(m->slot, 3999);
  EXPECT_EQ(m->to.host, "127.0.0.1");
  EXPECT_EQ(m->to.port, 6381);
  auto a = parse_redirect("ASK 1 [::1]:7000");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->ask);
  EXPECT_EQ(a->to.host, "::1");
  EXPECT_EQ(a->to.name(), "[::1]:7000");
  auto v6 = parse_redirect("MOVED 2 ::1:7000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to.host, "::1");
}

TEST(Redirect, RejectsOtherErrors) {
  EXPECT_FALSE(parse_redirect("ERR unknown command"));
  EXPECT_FALSE(parse_redirect("MOVED"));
  EXPECT_FALSE(parse_redirect("MOVED 16384 h:1"));
  EXPECT_FALSE(parse_redirect("MOVED 1 h:0"));
  EXPECT_FALSE(parse_redirect("MOVED 1 h"));
  EXPECT_FALSE(parse_redirect("MOVED x h:1"));
  EXPECT_FALSE(parse_redirect("MOVED 1 :1"));
  EXPECT_FALSE(parse_redirect("TRYAGAIN Multiple keys request"));
}

Reply shard_node(const std::string& ip, long long port, const char* role,
                 const char* health, long long tls_port = 0) {
  std::vector<Reply> f = {str("id"), str("abc"), str("port"), num(port)};
  if (tls_port != 0) {
    f.push_back(str("tls-port"));
    f.push_back(num(tls_port));
  }
  for (auto& x :
       {str("ip"), str(ip), str("endpoint"), str(ip), str("role"), str(role),
        str("replication-offset"), num(1), str("health"), str(health)}) {
    f.push_back(x);
  }
  return arr(f);
}

TEST(SlotMapTest, FromClusterShards) {
  ClusterNode asked{"10.0.0.9", 7009};
  Reply r = arr({
      arr({str("slots"), arr({num(0), num(99), num(200), num(299)}),
           str("nodes"),
           arr({shard_node("10.0.0.1", 7000, "master", "online", 8000),
                shard_node("10.0.0.2", 7001, "replica", "online", 8001)})}),
      arr({str("slots"), arr({num(100), num(199)}), str("nodes"),
           // A failed old master and the replica that took over.
           arr({shard_node("10.0.0.3", 7002, "master", "failed"),
                shard_node("?", 7003, "master", "online")})}),
  });
  auto map = parse_cluster_shards(r, false, asked);
  ASSERT_TRUE(map) << map.error().message;
  ASSERT_EQ(map->ranges.size(), 3u);
  EXPECT_EQ(map->master_of(0)->name(), "10.0.0.1:7000");
  EXPECT_EQ(map->master_of(250)->name(), "10.0.0.1:7000");
  // "?" stands for the node asked.
  EXPECT_EQ(map->master_of(150)->name(), "10.0.0.9:7003");
  EXPECT_FALSE(map->master_of(300));
  EXPECT_EQ(map->nodes.size(), 4u);
  EXPECT_EQ(map->masters().size(), 2u);
  auto tls = parse_cluster_shards(r, true, asked);
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->master_of(0)->port, 8000);
  EXPECT_EQ(tls->master_of(150)->port, 7003);  // no tls-port: its port
}

TEST(SlotMapTest, FromClusterSlots) {
  ClusterNode asked{"10.0.0.9", 7009};
  Reply r = arr({
      arr({num(0), num(8191), arr({str("10.0.0.1"), num(7000), str("id1")}),
           arr({str("10.0.0.2"), num(7001), str("id2")})}),
      arr({num(8192), num(16383), arr({str(""), num(7002), str("id3")})}),
  });
  auto map = parse_cluster_slots(r, asked);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(map->master_of(8191)->name(), "10.0.0.1:7000");
  EXPECT_EQ(map->master_of(16383)->name(), "10.0.0.9:7002");
  EXPECT_EQ(map->nodes.size(), 3u);
}

TEST(SlotMapTest, MalformedRepliesAreProtocolErrors) {
  ClusterNode asked{"h", 1};
  EXPECT_FALSE(parse_cluster_shards(str("x"), false, asked));
  EXPECT_FALSE(parse_cluster_shards(arr({arr({str("slots")})}), false, asked));
  EXPECT_FALSE(parse_cluster_shards(
      arr({arr({str("slots"), arr({num(5)}), str("nodes"), arr({})})}), false,
      asked));
  EXPECT_FALSE(parse_cluster_shards(
      arr({arr({str("slots"), arr({num(9), num(5)}), str("nodes"),
                arr({shard_node("a", 1, "master", "online")})})}),
      false, asked));
  EXPECT_FALSE(parse_cluster_slots(arr({arr({num(0), num(1)})}), asked));
  EXPECT_FALSE(parse_cluster_slots(
      arr({arr({num(0), num(16384), arr({str("a"), num(1)})})}), asked));
}

TEST(SlotMapTest, MoveSlotSplitsARange) {
  SlotMap map;
  map.ranges.push_back({0, 100, ClusterNode{"a", 1}});
  map.move_slot(50, ClusterNode{"b", 2});
  EXPECT_EQ(map.master_of(49)->name(), "a:1");
  EXPECT_EQ(map.master_of(50)->name(), "b:2");
  EXPECT_EQ(map.master_of(51)->name(), "a:1");
  map.move_slot(0, ClusterNode{"b", 2});
  map.move_slot(100, ClusterNode{"b", 2});
  EXPECT_EQ(map.master_of(0)->name(), "b:2");
  EXPECT_EQ(map.master_of(100)->name(), "b:2");
  EXPECT_EQ(map.master_of(1)->name(), "a:1");
  EXPECT_EQ(map.masters().size(), 2u);
  map.move_slot(7000, ClusterNode{"c", 3});  // a slot nobody served
  EXPECT_EQ(map.master_of(7000)->name(), "c:3");
}

}  // namespace
