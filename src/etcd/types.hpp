// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace godislock::etcd {

// --- Interface ---

// Plain request and reply types of the etcd v3 API (etcdserverpb in
// etcd's api/etcdserverpb/rpc.proto and mvccpb/kv.proto), as far as the
// client uses them. Keys and values are raw bytes; the JSON gateway's
// base64 and string-encoded int64s stay inside the codec.

// Returned with every reply.
struct Header {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  int64_t revision = 0;
  uint64_t raft_term = 0;
};

// mvccpb.KeyValue.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

enum class SortOrder { none, ascend, descend };
enum class SortTarget { key, version, create, mod, value };

// RangeRequest: one key, or [key, range_end) when range_end is set (see
// prefix_end() for "every key that starts with key").
struct RangeRequest {
  std::string key;
  std::string range_end;
  int64_t limit = 0;     // 0: no limit
  int64_t revision = 0;  // 0: the newest
  SortOrder sort_order = SortOrder::none;
  SortTarget sort_target = SortTarget::key;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_create_revision = 0;  // 0: no filter
  int64_t max_create_revision = 0;  // 0: no filter
};

struct RangeResponse {
  Header header;
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
};

struct PutRequest {
  std::string key;
  std::string value;
  int64_t lease = 0;  // 0: no lease
  bool prev_kv = false;
};

struct PutResponse {
  Header header;
  bool has_prev_kv = false;
  KeyValue prev_kv;
};

struct DeleteRangeRequest {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
};

struct DeleteRangeResponse {
  Header header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

// One comparison of a transaction (etcdserverpb.Compare).
struct Compare {
  enum class Target { version, create, mod, value, lease };
  enum class Result { equal, greater, less, not_equal };

  std::string key;
  Target target = Target::create;
  Result result = Result::equal;
  int64_t number = 0;  // for version, create, mod and lease
  std::string value;   // for value

  static Compare create_revision(std::string key, Result r, int64_t rev);
  static Compare mod_revision(std::string key, Result r, int64_t rev);
  static Compare version(std::string key, Result r, int64_t version);
  static Compare value_is(std::string key, Result r, std::string value);
};

using RequestOp = std::variant<RangeRequest, PutRequest, DeleteRangeRequest>;
using ResponseOp =
    std::variant<RangeResponse, PutResponse, DeleteRangeResponse>;

struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

// responses[i] answers success[i] (or failure[i] when !succeeded).
struct TxnResponse {
  Header header;
  bool succeeded = false;
  std::vector<ResponseOp> responses;
};

struct LeaseGrantResponse {
  Header header;
  int64_t id = 0;
  int64_t ttl_s = 0;
};

// ttl_s <= 0: the lease no longer exists (expired or revoked).
struct LeaseKeepAliveResponse {
  Header header;
  int64_t id = 0;
  int64_t ttl_s = 0;
};

// ttl_s == -1: the lease no longer exists.
struct LeaseTimeToLiveResponse {
  Header header;
  int64_t id = 0;
  int64_t ttl_s = 0;
  int64_t granted_ttl_s = 0;
  std::vector<std::string> keys;
};

// maintenance Status of the member that answered.
struct StatusResponse {
  Header header;
  std::string version;
  uint64_t leader = 0;  // member id of the leader; 0 when there is none
  uint64_t raft_index = 0;
};

struct WatchRequest {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;  // 0: from the next revision
  bool prev_kv = false;
  bool no_put = false;     // filter out PUT events
  bool no_delete = false;  // filter out DELETE events
};

struct Event {
  enum class Type { put, del };
  Type type = Type::put;
  KeyValue kv;
  bool has_prev_kv = false;
  KeyValue prev_kv;
};

// One message of a watch stream. A canceled watch is over: the server sends
// nothing more on it. compact_revision > 0 means the start revision was
// compacted away, so events were lost and the caller must re-read.
struct WatchResponse {
  Header header;
  int64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
  std::vector<Event> events;
};

// The range_end that selects every key starting with `prefix` (etcd's
// clientv3.GetPrefixRangeEnd): the prefix with its last byte below 0xff
// incremented and the rest cut off; "\0" (every key) when there is none.
std::string prefix_end(std::string_view prefix);

}  // namespace godislock::etcd
