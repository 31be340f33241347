// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <string>

#include "etcd/codec.hpp"

namespace godislock::etcd::codec {
namespace {

TEST(EtcdCodecTest, Base64RoundTripsEveryLengthAndByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all += static_cast<char>(i);
  }
  for (size_t n = 0; n <= all.size(); ++n) {
    std::string s = all.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(s)), s) << n;
  }
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("k"), "aw==");
  EXPECT_EQ(base64_encode("ke"), "a2U=");
}

TEST(EtcdCodecTest, Base64RejectsBadText) {
  for (const char* bad : {"a", "ab=c", "a===", "ab!d", "=abc"}) {
    EXPECT_THROW(base64_decode(bad), DecodeError) << bad;
  }
}

TEST(EtcdCodecTest, PrefixEnd) {
  EXPECT_EQ(prefix_end("a/"), "a0");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST(EtcdCodecTest, EncodesInt64AsStringsAndEnumsByName) {
  RangeRequest r;
  r.key = "k";
  r.range_end = "l";
  r.limit = 1;
  r.max_create_revision = 9007199254740993;  // above 2^53
  r.sort_order = SortOrder::descend;
  r.sort_target = SortTarget::create;
  Json j = encode(r);
  EXPECT_EQ(j["key"], "aw==");
  EXPECT_EQ(j["limit"], "1");
  EXPECT_EQ(j["max_create_revision"], "9007199254740993");
  EXPECT_EQ(j["sort_order"], "DESCEND");
  EXPECT_EQ(j["sort_target"], "CREATE");
  EXPECT_FALSE(j.contains("count_only"));

  TxnRequest t;
  t.compare.push_back(Compare::create_revision("k", Compare::Result::equal, 0));
  t.success.emplace_back(PutRequest{"k", "v", 7, false});
  Json tj = encode(t);
  EXPECT_EQ(tj["compare"][0]["target"], "CREATE");
  EXPECT_EQ(tj["compare"][0]["create_revision"], "0");
  EXPECT_EQ(tj["success"][0]["request_put"]["lease"], "7");
  EXPECT_TRUE(tj["failure"].empty());
}

TEST(EtcdCodecTest, DecodesRepliesWithDefaultFieldsLeftOut) {
  // As etcd 3.4's gateway sends them: no "kvs"/"count" when empty, no
  // "type" for PUT events.
  Json empty = Json::parse(R"({"header":{"revision":"5"}})");
  RangeResponse r = decode_range(empty);
  EXPECT_EQ(r.header.revision, 5);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 0);

  Json w = Json::parse(R"({"header":{"revision":"9"},"events":[
    {"kv":{"key":"aw==","create_revision":"8","mod_revision":"9",
           "version":"2","value":"dg=="}},
    {"type":"DELETE","kv":{"key":"aw==","mod_revision":"10"}}]})");
  WatchResponse wr = decode_watch(w);
  ASSERT_EQ(wr.events.size(), 2u);
  EXPECT_EQ(wr.events[0].type, Event::Type::put);
  EXPECT_EQ(wr.events[0].kv.value, "v");
  EXPECT_EQ(wr.events[0].kv.version, 2);
  EXPECT_EQ(wr.events[1].type, Event::Type::del);
  EXPECT_EQ(wr.events[1].kv.mod_revision, 10);
}

TEST(EtcdCodecTest, RejectsRepliesOfTheWrongShape) {
  EXPECT_THROW(decode_range(Json::parse("[1]")), DecodeError);
  EXPECT_THROW(decode_range(Json::parse(R"({"kvs":{}})")), DecodeError);
  EXPECT_THROW(decode_range(Json::parse(R"({"count":"x"})")), DecodeError);
  EXPECT_THROW(decode_range(Json::parse(R"({"kvs":[{"key":"!!"}]})")),
               DecodeError);
}

}  // namespace
}  // namespace godislock::etcd::codec
