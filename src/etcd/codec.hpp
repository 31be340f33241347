// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "etcd/types.hpp"

namespace godislock::etcd::codec {

// --- Interface ---

// JSON encoding of the v3 API as etcd's grpc-gateway speaks it (the proto3
// JSON mapping, https://protobuf.dev/programming-guides/proto3/#json):
// bytes fields are standard base64, int64/uint64 are decimal strings, enums
// are their names, and fields at their default value (0, false, "", the
// first enum value) are left out of replies. Pure functions; no I/O.
// Decoders throw DecodeError when a reply does not have that shape.

using Json = nlohmann::json;

struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string base64_encode(std::string_view bytes);
// Throws DecodeError on a character outside the alphabet or bad padding.
std::string base64_decode(std::string_view text);

Json encode(const RangeRequest& req);
Json encode(const PutRequest& req);
Json encode(const DeleteRangeRequest& req);
Json encode(const TxnRequest& req);
Json encode(const WatchRequest& req);  // {"create_request": {...}}

Header decode_header(const Json& j);
KeyValue decode_kv(const Json& j);
RangeResponse decode_range(const Json& j);
PutResponse decode_put(const Json& j);
DeleteRangeResponse decode_delete_range(const Json& j);
TxnResponse decode_txn(const Json& j);
LeaseGrantResponse decode_lease_grant(const Json& j);
LeaseKeepAliveResponse decode_lease_keep_alive(const Json& j);
LeaseTimeToLiveResponse decode_lease_time_to_live(const Json& j);
StatusResponse decode_status(const Json& j);
WatchResponse decode_watch(const Json& j);

// An int64 field: absent (0), a decimal string, or a JSON number.
int64_t get_int(const Json& obj, const char* name);
uint64_t get_uint(const Json& obj, const char* name);

}  // namespace godislock::etcd::codec
