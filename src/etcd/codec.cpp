// SPDX-License-Identifier: MIT
#include "etcd/codec.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string>

namespace godislock::etcd {

Compare Compare::create_revision(std::string key, Result r, int64_t rev) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::create;
  c.result = r;
  c.number = rev;
  return c;
}

Compare Compare::mod_revision(std::string key, Result r, int64_t rev) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::mod;
  c.result = r;
  c.number = rev;
  return c;
}

Compare Compare::version(std::string key, Result r, int64_t version) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::version;
  c.result = r;
  c.number = version;
  return c;
}

Compare Compare::value_is(std::string key, Result r, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::value;
  c.result = r;
  c.value = std::move(value);
  return c;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // Every byte was 0xff: no upper bound, which etcd spells "\0".
  return std::string(1, '\0');
}

namespace codec {

namespace {

constexpr char k_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

std::string num(int64_t v) { return std::to_string(v); }

const char* sort_order_name(SortOrder o) {
  switch (o) {
    case SortOrder::none:
      return "NONE";
    case SortOrder::ascend:
      return "ASCEND";
    case SortOrder::descend:
      return "DESCEND";
  }
  return "NONE";
}

const char* sort_target_name(SortTarget t) {
  switch (t) {
    case SortTarget::key:
      return "KEY";
    case SortTarget::version:
      return "VERSION";
    case SortTarget::create:
      return "CREATE";
    case SortTarget::mod:
      return "MOD";
    case SortTarget::value:
      return "VALUE";
  }
  return "KEY";
}

const char* compare_target_name(Compare::Target t) {
  switch (t) {
    case Compare::Target::version:
      return "VERSION";
    case Compare::Target::create:
      return "CREATE";
    case Compare::Target::mod:
      return "MOD";
    case Compare::Target::value:
      return "VALUE";
    case Compare::Target::lease:
      return "LEASE";
  }
  return "CREATE";
}

const char* compare_result_name(Compare::Result r) {
  switch (r) {
    case Compare::Result::equal:
      return "EQUAL";
    case Compare::Result::greater:
      return "GREATER";
    case Compare::Result::less:
      return "LESS";
    case Compare::Result::not_equal:
      return "NOT_EQUAL";
  }
  return "EQUAL";
}

Json encode_op(const RequestOp& op) {
  if (const auto* r = std::get_if<RangeRequest>(&op)) {
    return Json{{"request_range", encode(*r)}};
  }
  if (const auto* p = std::get_if<PutRequest>(&op)) {
    return Json{{"request_put", encode(*p)}};
  }
  return Json{
      {"request_delete_range", encode(std::get<DeleteRangeRequest>(op))}};
}

const Json& field_or_empty(const Json& obj, const char* name) {
  static const Json k_empty = Json::object();
  auto it = obj.find(name);
  return it == obj.end() ? k_empty : *it;
}

std::string get_bytes(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    return {};
  }
  if (!it->is_string()) {
    throw DecodeError(std::string("field ") + name + " is not a string");
  }
  return base64_decode(it->get_ref<const std::string&>());
}

bool get_bool(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    return false;
  }
  if (!it->is_boolean()) {
    throw DecodeError(std::string("field ") + name + " is not a boolean");
  }
  return it->get<bool>();
}

void require_object(const Json& j) {
  if (!j.is_object()) {
    throw DecodeError("reply is not a JSON object");
  }
}

std::vector<KeyValue> get_kvs(const Json& obj, const char* name) {
  std::vector<KeyValue> out;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    throw DecodeError(std::string("field ") + name + " is not an array");
  }
  for (const auto& kv : *it) {
    out.push_back(decode_kv(kv));
  }
  return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n =
        static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
        static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
        static_cast<unsigned char>(bytes[i + 2]);
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += k_alphabet[n >> 6 & 63];
    out += k_alphabet[n & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i]))
                 << 16;
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += "==";
  } else if (rest == 2) {
    uint32_t n =
        static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
        static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += k_alphabet[n >> 18 & 63];
    out += k_alphabet[n >> 12 & 63];
    out += k_alphabet[n >> 6 & 63];
    out += '=';
  }
  return out;
}

std::string base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    throw DecodeError("base64 text of a length not a multiple of 4");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    std::array<int, 4> v{};
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      // Padding only in the last group, only at its end.
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad != 0 || (v[k] = b64_value(c)) < 0) {
        throw DecodeError("bad base64 text");
      }
    }
    uint32_t n = static_cast<uint32_t>(v[0]) << 18 |
                 static_cast<uint32_t>(v[1]) << 12 |
                 static_cast<uint32_t>(v[2]) << 6 | static_cast<uint32_t>(v[3]);
    out += static_cast<char>(n >> 16 & 0xff);
    if (pad < 2) {
      out += static_cast<char>(n >> 8 & 0xff);
    }
    if (pad < 1) {
      out += static_cast<char>(n & 0xff);
    }
  }
  return out;
}

int64_t get_int(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    return 0;
  }
  if (it->is_number_integer()) {
    return it->get<int64_t>();
  }
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE) {
      throw DecodeError(std::string("field ") + name + " is not an integer");
    }
    return v;
  }
  throw DecodeError(std::string("field ") + name + " is not an integer");
}

uint64_t get_uint(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    return 0;
  }
  if (it->is_number_unsigned()) {
    return it->get<uint64_t>();
  }
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s[0] == '-' || *end != '\0' || errno == ERANGE) {
      throw DecodeError(std::string("field ") + name + " is not an integer");
    }
    return v;
  }
  throw DecodeError(std::string("field ") + name + " is not an integer");
}

Json encode(const RangeRequest& req) {
  Json j = {{"key", base64_encode(req.key)}};
  if (!req.range_end.empty()) {
    j["range_end"] = base64_encode(req.range_end);
  }
  if (req.limit != 0) {
    j["limit"] = num(req.limit);
  }
  if (req.revision != 0) {
    j["revision"] = num(req.revision);
  }
  if (req.sort_order != SortOrder::none) {
    j["sort_order"] = sort_order_name(req.sort_order);
  }
  if (req.sort_target != SortTarget::key) {
    j["sort_target"] = sort_target_name(req.sort_target);
  }
  if (req.keys_only) {
    j["keys_only"] = true;
  }
  if (req.count_only) {
    j["count_only"] = true;
  }
  if (req.min_create_revision != 0) {
    j["min_create_revision"] = num(req.min_create_revision);
  }
  if (req.max_create_revision != 0) {
    j["max_create_revision"] = num(req.max_create_revision);
  }
  return j;
}

Json encode(const PutRequest& req) {
  Json j = {{"key", base64_encode(req.key)},
            {"value", base64_encode(req.value)}};
  if (req.lease != 0) {
    j["lease"] = num(req.lease);
  }
  if (req.prev_kv) {
    j["prev_kv"] = true;
  }
  return j;
}

Json encode(const DeleteRangeRequest& req) {
  Json j = {{"key", base64_encode(req.key)}};
  if (!req.range_end.empty()) {
    j["range_end"] = base64_encode(req.range_end);
  }
  if (req.prev_kv) {
    j["prev_kv"] = true;
  }
  return j;
}

Json encode(const TxnRequest& req) {
  Json compare = Json::array();
  for (const auto& c : req.compare) {
    Json jc = {{"key", base64_encode(c.key)},
               {"target", compare_target_name(c.target)},
               {"result", compare_result_name(c.result)}};
    switch (c.target) {
      case Compare::Target::version:
        jc["version"] = num(c.number);
        break;
      case Compare::Target::create:
        jc["create_revision"] = num(c.number);
        break;
      case Compare::Target::mod:
        jc["mod_revision"] = num(c.number);
        break;
      case Compare::Target::lease:
        jc["lease"] = num(c.number);
        break;
      case Compare::Target::value:
        jc["value"] = base64_encode(c.value);
        break;
    }
    compare.push_back(std::move(jc));
  }
  Json success = Json::array();
  for (const auto& op : req.success) {
    success.push_back(encode_op(op));
  }
  Json failure = Json::array();
  for (const auto& op : req.failure) {
    failure.push_back(encode_op(op));
  }
  return Json{{"compare", compare}, {"success", success}, {"failure", failure}};
}

Json encode(const WatchRequest& req) {
  Json c = {{"key", base64_encode(req.key)}};
  if (!req.range_end.empty()) {
    c["range_end"] = base64_encode(req.range_end);
  }
  if (req.start_revision != 0) {
    c["start_revision"] = num(req.start_revision);
  }
  if (req.prev_kv) {
    c["prev_kv"] = true;
  }
  Json filters = Json::array();
  if (req.no_put) {
    filters.push_back("NOPUT");
  }
  if (req.no_delete) {
    filters.push_back("NODELETE");
  }
  if (!filters.empty()) {
    c["filters"] = filters;
  }
  return Json{{"create_request", c}};
}

Header decode_header(const Json& j) {
  const Json& h = field_or_empty(j, "header");
  Header out;
  out.cluster_id = get_uint(h, "cluster_id");
  out.member_id = get_uint(h, "member_id");
  out.revision = get_int(h, "revision");
  out.raft_term = get_uint(h, "raft_term");
  return out;
}

KeyValue decode_kv(const Json& j) {
  require_object(j);
  KeyValue kv;
  kv.key = get_bytes(j, "key");
  kv.value = get_bytes(j, "value");
  kv.create_revision = get_int(j, "create_revision");
  kv.mod_revision = get_int(j, "mod_revision");
  kv.version = get_int(j, "version");
  kv.lease = get_int(j, "lease");
  return kv;
}

RangeResponse decode_range(const Json& j) {
  require_object(j);
  RangeResponse r;
  r.header = decode_header(j);
  r.kvs = get_kvs(j, "kvs");
  r.more = get_bool(j, "more");
  r.count = get_int(j, "count");
  return r;
}

PutResponse decode_put(const Json& j) {
  require_object(j);
  PutResponse r;
  r.header = decode_header(j);
  auto it = j.find("prev_kv");
  if (it != j.end() && !it->is_null()) {
    r.has_prev_kv = true;
    r.prev_kv = decode_kv(*it);
  }
  return r;
}

DeleteRangeResponse decode_delete_range(const Json& j) {
  require_object(j);
  DeleteRangeResponse r;
  r.header = decode_header(j);
  r.deleted = get_int(j, "deleted");
  r.prev_kvs = get_kvs(j, "prev_kvs");
  return r;
}

TxnResponse decode_txn(const Json& j) {
  require_object(j);
  TxnResponse r;
  r.header = decode_header(j);
  r.succeeded = get_bool(j, "succeeded");
  auto it = j.find("responses");
  if (it == j.end() || it->is_null()) {
    return r;
  }
  if (!it->is_array()) {
    throw DecodeError("field responses is not an array");
  }
  for (const auto& op : *it) {
    require_object(op);
    if (auto f = op.find("response_range"); f != op.end()) {
      r.responses.emplace_back(decode_range(*f));
    } else if (auto p = op.find("response_put"); p != op.end()) {
      r.responses.emplace_back(decode_put(*p));
    } else if (auto d = op.find("response_delete_range"); d != op.end()) {
      r.responses.emplace_back(decode_delete_range(*d));
    } else {
      throw DecodeError("txn response of an unknown kind");
    }
  }
  return r;
}

LeaseGrantResponse decode_lease_grant(const Json& j) {
  require_object(j);
  LeaseGrantResponse r;
  r.header = decode_header(j);
  r.id = get_int(j, "ID");
  r.ttl_s = get_int(j, "TTL");
  if (auto it = j.find("error"); it != j.end() && it->is_string() &&
                                 !it->get_ref<const std::string&>().empty()) {
    throw DecodeError("lease grant failed: " + it->get<std::string>());
  }
  return r;
}

LeaseKeepAliveResponse decode_lease_keep_alive(const Json& j) {
  require_object(j);
  LeaseKeepAliveResponse r;
  r.header = decode_header(j);
  r.id = get_int(j, "ID");
  r.ttl_s = get_int(j, "TTL");
  return r;
}

LeaseTimeToLiveResponse decode_lease_time_to_live(const Json& j) {
  require_object(j);
  LeaseTimeToLiveResponse r;
  r.header = decode_header(j);
  r.id = get_int(j, "ID");
  r.ttl_s = get_int(j, "TTL");
  r.granted_ttl_s = get_int(j, "grantedTTL");
  auto it = j.find("keys");
  if (it != j.end() && it->is_array()) {
    for (const auto& k : *it) {
      if (!k.is_string()) {
        throw DecodeError("lease key is not a string");
      }
      r.keys.push_back(base64_decode(k.get_ref<const std::string&>()));
    }
  }
  return r;
}

StatusResponse decode_status(const Json& j) {
  require_object(j);
  StatusResponse r;
  r.header = decode_header(j);
  if (auto it = j.find("version"); it != j.end() && it->is_string()) {
    r.version = it->get<std::string>();
  }
  r.leader = get_uint(j, "leader");
  r.raft_index = get_uint(j, "raftIndex");
  return r;
}

WatchResponse decode_watch(const Json& j) {
  require_object(j);
  WatchResponse r;
  r.header = decode_header(j);
  r.watch_id = get_int(j, "watch_id");
  r.created = get_bool(j, "created");
  r.canceled = get_bool(j, "canceled");
  r.compact_revision = get_int(j, "compact_revision");
  if (auto it = j.find("cancel_reason"); it != j.end() && it->is_string()) {
    r.cancel_reason = it->get<std::string>();
  }
  auto it = j.find("events");
  if (it == j.end() || it->is_null()) {
    return r;
  }
  if (!it->is_array()) {
    throw DecodeError("field events is not an array");
  }
  for (const auto& e : *it) {
    require_object(e);
    Event ev;
    auto t = e.find("type");
    if (t == e.end() || t->is_null() || *t == "PUT" || *t == 0) {
      ev.type = Event::Type::put;
    } else if (*t == "DELETE" || *t == 1) {
      ev.type = Event::Type::del;
    } else {
      throw DecodeError("watch event of an unknown type");
    }
    ev.kv = decode_kv(field_or_empty(e, "kv"));
    if (auto p = e.find("prev_kv"); p != e.end() && !p->is_null()) {
      ev.has_prev_kv = true;
      ev.prev_kv = decode_kv(*p);
    }
    r.events.push_back(std::move(ev));
  }
  return r;
}

}  // namespace codec
}  // namespace godislock::etcd
