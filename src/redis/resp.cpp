// SPDX-License-Identifier: MIT
#include "redis/resp.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

#include <cstdlib>

namespace godislock::redis {

namespace {

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using HiredisReply = std::unique_ptr<redisReply, ReplyDeleter>;

// RESP2 has these types only (we never send HELLO 3): anything else is a
// stream we do not understand, not a value to guess at.
util::Result<Reply> convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        auto element = convert(r->element[i]);
        if (!element) {
          return element.error();
        }
        out.elements.push_back(std::move(*element));
      }
      break;
    case REDIS_REPLY_NIL:
      out.type = Reply::Type::nil;
      break;
    default:
      return util::Error{util::ErrorKind::protocol,
                         "not a Redis server? a reply of unknown type " +
                             std::to_string(r->type)};
  }
  return out;
}

}  // namespace

struct ReplyReader::Impl {
  std::unique_ptr<redisReader, ReaderDeleter> reader{redisReaderCreate()};
};

ReplyReader::ReplyReader() : m_impl(std::make_unique<Impl>()) {}
ReplyReader::~ReplyReader() = default;
ReplyReader::ReplyReader(ReplyReader&&) noexcept = default;
ReplyReader& ReplyReader::operator=(ReplyReader&&) noexcept = default;

util::Status ReplyReader::feed(const char* data, size_t len) {
  if (redisReaderFeed(m_impl->reader.get(), data, len) != REDIS_OK) {
    return util::Error{util::ErrorKind::protocol, m_impl->reader->errstr};
  }
  return util::ok_status();
}

util::Result<std::optional<Reply>> ReplyReader::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(m_impl->reader.get(), &raw) != REDIS_OK) {
    return util::Error{
        util::ErrorKind::protocol,
        std::string("not a Redis server? ") + m_impl->reader->errstr};
  }
  if (raw == nullptr) {
    return std::optional<Reply>();
  }
  HiredisReply reply(static_cast<redisReply*>(raw));
  auto converted = convert(reply.get());
  if (!converted) {
    return converted.error();
  }
  return std::optional<Reply>(std::move(*converted));
}

std::string encode_command(const std::vector<std::string>& argv) {
  // RESP framing is simple enough to write directly; this avoids the
  // int-sized argc of redisFormatCommandArgv and an extra copy.
  std::string out;
  size_t total = 16;
  for (const auto& a : argv) {
    total += a.size() + 16;
  }
  out.reserve(total);
  out += '*';
  out += std::to_string(argv.size());
  out += "\r\n";
  for (const auto& a : argv) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

}  // namespace godislock::redis
