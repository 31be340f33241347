// SPDX-License-Identifier: MIT
#pragma once

#include "util/result.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace godislock::redis {

// One decoded RESP2 reply, owned by value (no hiredis type escapes this
// directory).
struct Reply {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  long long integer = 0;
  std::string str;  // bulk string, status or error text
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::error; }
};

// Encodes a command as a RESP array of bulk strings (binary-safe).
std::string encode_command(const std::vector<std::string>& argv);

// Incremental RESP decoder: feed bytes as they arrive, take whole replies.
// Wraps hiredis's reader; not thread-safe; move-only.
class ReplyReader {
 public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(ReplyReader&&) noexcept;
  ReplyReader& operator=(ReplyReader&&) noexcept;

  // Returns a protocol error when the stream is not RESP.
  util::Status feed(const char* data, size_t len);
  // A complete reply, nullopt when more bytes are needed, or a protocol
  // error (after which the reader is unusable).
  util::Result<std::optional<Reply>> next();

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace godislock::redis
