// SPDX-License-Identifier: MIT
#include "redis/resp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using godislock::redis::encode_command;
using godislock::redis::Reply;
using godislock::redis::ReplyReader;
using godislock::util::ErrorKind;

using namespace std::string_literals;

// Feeds `bytes` one at a time, asking for a reply after each byte. Expects
// exactly one reply, completed by the last byte.
Reply read_bytewise(const std::string& bytes) {
  ReplyReader reader;
  Reply out;
  bool got = false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto fed = reader.feed(&bytes[i], 1);
    EXPECT_TRUE(fed.ok()) << "byte " << i << ": " << fed.error().message;
    auto r = reader.next();
    EXPECT_TRUE(r.ok()) << "byte " << i << ": " << r.error().message;
    if (!r.ok()) {
      return out;
    }
    if (r.value().has_value()) {
      EXPECT_EQ(i + 1, bytes.size()) << "reply complete before the last byte";
      EXPECT_FALSE(got) << "two replies";
      out = std::move(*r.value());
      got = true;
    }
  }
  EXPECT_TRUE(got) << "no reply after all bytes";
  auto after = reader.next();
  EXPECT_TRUE(after.ok());
  if (after.ok()) {
    EXPECT_FALSE(after.value().has_value()) << "extra reply";
  }
  return out;
}

TEST(Resp, EncodesCommandAsArrayOfBulkStrings) {
  EXPECT_EQ(encode_command({"PING"}), "*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(encode_command({"SET", "k", "v"}),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
  EXPECT_EQ(encode_command({}), "*0\r\n");
  EXPECT_EQ(encode_command({"ECHO", ""}), "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
}

TEST(Resp, EncodeIsBinarySafe) {
  std::string nul = "a\0b"s;
  std::string crlf = "x\r\ny";
  std::string high = "\xff\xfe\x00\x01"s;
  std::string got = encode_command({"SET", nul, crlf, high});
  std::string want = "*4\r\n$3\r\nSET\r\n$3\r\na\0b\r\n$4\r\nx\r\ny\r\n"s +
                     "$4\r\n\xff\xfe\x00\x01\r\n"s;
  EXPECT_EQ(got, want);
}

TEST(Resp, EncodedCommandDecodesBack) {
  std::vector<std::string> argv = {"EVALSHA", "a\0b\r\n"s, "", "$5\r\n",
                                   std::string(70000, 'z')};
  std::string wire = encode_command(argv);
  ReplyReader reader;
  ASSERT_TRUE(reader.feed(wire.data(), wire.size()).ok());
  auto r = reader.next();
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  const Reply& reply = *r.value();
  ASSERT_EQ(reply.type, Reply::Type::array);
  ASSERT_EQ(reply.elements.size(), argv.size());
  for (size_t i = 0; i < argv.size(); ++i) {
    EXPECT_EQ(reply.elements[i].type, Reply::Type::string);
    EXPECT_EQ(reply.elements[i].str, argv[i]) << "arg " << i;
  }
}

TEST(Resp, StatusBytewise) {
  Reply r = read_bytewise("+OK\r\n");
  EXPECT_EQ(r.type, Reply::Type::status);
  EXPECT_EQ(r.str, "OK");
  EXPECT_FALSE(r.is_error());
}

TEST(Resp, ErrorBytewise) {
  Reply r = read_bytewise("-NOSCRIPT No matching script\r\n");
  EXPECT_EQ(r.type, Reply::Type::error);
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.str, "NOSCRIPT No matching script");
}

TEST(Resp, IntegerBytewise) {
  Reply r = read_bytewise(":1234\r\n");
  EXPECT_EQ(r.type, Reply::Type::integer);
  EXPECT_EQ(r.integer, 1234);
  EXPECT_EQ(read_bytewise(":-42\r\n").integer, -42);
  EXPECT_EQ(read_bytewise(":0\r\n").integer, 0);
  EXPECT_EQ(read_bytewise(":9223372036854775807\r\n").integer,
            9223372036854775807LL);
}

TEST(Resp, BulkBytewise) {
  Reply r = read_bytewise("$11\r\nhello\r\n\0wor\r\n"s);
  EXPECT_EQ(r.type, Reply::Type::string);
  EXPECT_EQ(r.str, "hello\r\n\0wor"s);
  Reply empty = read_bytewise("$0\r\n\r\n");
  EXPECT_EQ(empty.type, Reply::Type::string);
  EXPECT_EQ(empty.str, "");
}

TEST(Resp, NilBulkBytewise) {
  Reply r = read_bytewise("$-1\r\n");
  EXPECT_EQ(r.type, Reply::Type::nil);
  EXPECT_FALSE(r.is_error());
}

TEST(Resp, NilArrayIsNil) {
  EXPECT_EQ(read_bytewise("*-1\r\n").type, Reply::Type::nil);
}

TEST(Resp, EmptyArrayBytewise) {
  Reply r = read_bytewise("*0\r\n");
  EXPECT_EQ(r.type, Reply::Type::array);
  EXPECT_TRUE(r.elements.empty());
}

TEST(Resp, NestedArraysBytewise) {
  // [ "message", [ :1, $-1, [ +OK ] ], -ERR x, *0 ]
  std::string wire =
      "*4\r\n$7\r\nmessage\r\n*3\r\n:1\r\n$-1\r\n*1\r\n+OK\r\n-ERR x\r\n"
      "*0\r\n";
  Reply r = read_bytewise(wire);
  ASSERT_EQ(r.type, Reply::Type::array);
  ASSERT_EQ(r.elements.size(), 4u);
  EXPECT_EQ(r.elements[0].type, Reply::Type::string);
  EXPECT_EQ(r.elements[0].str, "message");
  const Reply& inner = r.elements[1];
  ASSERT_EQ(inner.type, Reply::Type::array);
  ASSERT_EQ(inner.elements.size(), 3u);
  EXPECT_EQ(inner.elements[0].type, Reply::Type::integer);
  EXPECT_EQ(inner.elements[0].integer, 1);
  EXPECT_EQ(inner.elements[1].type, Reply::Type::nil);
  ASSERT_EQ(inner.elements[2].type, Reply::Type::array);
  ASSERT_EQ(inner.elements[2].elements.size(), 1u);
  EXPECT_EQ(inner.elements[2].elements[0].type, Reply::Type::status);
  EXPECT_EQ(inner.elements[2].elements[0].str, "OK");
  EXPECT_EQ(r.elements[2].type, Reply::Type::error);
  EXPECT_EQ(r.elements[2].str, "ERR x");
  EXPECT_EQ(r.elements[3].type, Reply::Type::array);
  EXPECT_TRUE(r.elements[3].elements.empty());
}

TEST(Resp, TwoRepliesInOneFeed) {
  ReplyReader reader;
  std::string wire = "+OK\r\n:7\r\n$3\r\nabc";
  ASSERT_TRUE(reader.feed(wire.data(), wire.size()).ok());
  auto first = reader.next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first.value().has_value());
  EXPECT_EQ(first.value()->type, Reply::Type::status);
  EXPECT_EQ(first.value()->str, "OK");
  auto second = reader.next();
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second.value().has_value());
  EXPECT_EQ(second.value()->type, Reply::Type::integer);
  EXPECT_EQ(second.value()->integer, 7);
  // The third is incomplete until its final CRLF arrives.
  auto third = reader.next();
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third.value().has_value());
  ASSERT_TRUE(reader.feed("\r\n", 2).ok());
  third = reader.next();
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(third.value().has_value());
  EXPECT_EQ(third.value()->str, "abc");
}

TEST(Resp, NextOnEmptyReaderNeedsMore) {
  ReplyReader reader;
  auto r = reader.next();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value().has_value());
}

TEST(Resp, GarbageIsAProtocolError) {
  ReplyReader reader;
  std::string wire = "HTTP/1.1 400 Bad Request\r\n\r\n";
  auto fed = reader.feed(wire.data(), wire.size());
  auto r = reader.next();
  ASSERT_FALSE(fed.ok() && r.ok()) << "garbage accepted";
  const auto& err = fed.ok() ? r.error() : fed.error();
  EXPECT_EQ(err.kind, ErrorKind::protocol);
  EXPECT_FALSE(err.message.empty());
}

TEST(Resp, GarbageFedBytewiseIsAProtocolError) {
  ReplyReader reader;
  std::string wire = "HTTP/1.1 400\r\n";
  bool failed = false;
  for (char c : wire) {
    auto fed = reader.feed(&c, 1);
    if (!fed.ok()) {
      EXPECT_EQ(fed.error().kind, ErrorKind::protocol);
      failed = true;
      break;
    }
    auto r = reader.next();
    if (!r.ok()) {
      EXPECT_EQ(r.error().kind, ErrorKind::protocol);
      failed = true;
      break;
    }
    EXPECT_FALSE(r.value().has_value()) << "garbage decoded as a reply";
  }
  EXPECT_TRUE(failed);
}

TEST(Resp, ReaderStaysFailedAfterProtocolError) {
  ReplyReader reader;
  auto first = reader.feed("!x\r\n", 4);
  auto r = reader.next();
  ASSERT_FALSE(first.ok() && r.ok()) << "garbage accepted";
  auto fed = reader.feed("+OK\r\n", 5);
  auto again = reader.next();
  EXPECT_FALSE(fed.ok() && again.ok() && again.value().has_value())
      << "a reply was decoded after a protocol error";
}

TEST(Resp, BadBulkLengthIsAProtocolError) {
  ReplyReader reader;
  ASSERT_TRUE(reader.feed("$abc\r\n", 6).ok());
  auto r = reader.next();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::protocol);
}

TEST(Resp, ReaderIsMovable) {
  ReplyReader a;
  ASSERT_TRUE(a.feed("+PO", 3).ok());
  ReplyReader b(std::move(a));
  ASSERT_TRUE(b.feed("NG\r\n", 4).ok());
  auto r = b.next();
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.value().has_value());
  EXPECT_EQ(r.value()->str, "PONG");
  ReplyReader c;
  c = std::move(b);
  ASSERT_TRUE(c.feed(":5\r\n", 4).ok());
  auto r2 = c.next();
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE(r2.value().has_value());
  EXPECT_EQ(r2.value()->integer, 5);
}

TEST(Resp, LargeBulkInChunks) {
  std::string payload;
  for (int i = 0; i < 100000; ++i) {
    payload.push_back(static_cast<char>(i % 256));
  }
  std::string wire =
      "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
  ReplyReader reader;
  size_t pos = 0;
  size_t chunk = 1;
  std::optional<Reply> got;
  while (pos < wire.size()) {
    size_t n = std::min(chunk, wire.size() - pos);
    ASSERT_TRUE(reader.feed(wire.data() + pos, n).ok());
    pos += n;
    chunk = chunk * 2 + 1;
    auto r = reader.next();
    ASSERT_TRUE(r.ok());
    if (r.value().has_value()) {
      ASSERT_EQ(pos, wire.size());
      got = std::move(r.value());
    }
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type, Reply::Type::string);
  EXPECT_EQ(got->str, payload);
}

}  // namespace

namespace {

// RESP3-only types (we never send HELLO 3): a reply that is not RESP2 is a
// protocol error, never a nil to be read as "absent".
TEST(Resp, ReplyTypesBeyondResp2AreProtocolErrors) {
  for (std::string bytes : {"#t\r\n"s, ",3.14\r\n"s, "%1\r\n+a\r\n:1\r\n"s,
                            "*1\r\n#f\r\n"s, "(12345678901234567890\r\n"s}) {
    ReplyReader reader;
    auto fed = reader.feed(bytes.data(), bytes.size());
    auto r = fed.ok()
                 ? reader.next()
                 : godislock::util::Result<std::optional<Reply>>(fed.error());
    ASSERT_FALSE(r.ok()) << "accepted: " << bytes;
    EXPECT_EQ(r.error().kind, ErrorKind::protocol) << bytes;
  }
}

}  // namespace
