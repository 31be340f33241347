-- SPDX-License-Identifier: MIT
-- Extend a hold of ours (see acquire.lua for the keys).
-- KEYS[1]  lock key      PREFIX{NAME}
-- KEYS[2]  fence key     PREFIX{NAME}:fence
-- ARGV[1]  token
-- ARGV[2]  ttl           milliseconds
-- ARGV[3]  limit         as for acquire
-- ARGV[4]  shared        as for acquire
-- Returns 1 when our hold was still there and was extended, 0 otherwise (it
-- is lost: expired, deleted or taken by someone else).
local lock, token, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local limit, shared = tonumber(ARGV[3]), ARGV[4] == '1'
local function extend_common()
  redis.call('PEXPIRE', lock .. ':holder:' .. token, ttl)
  extend(KEYS[2], ttl)
end
if shared then
  local readers = lock .. ':readers'
  if redis.call('TYPE', readers)['ok'] ~= 'zset' then
    return 0
  end
  local t = redis.call('TIME')
  local now = ms_of(t)
  local expiry = redis.call('ZSCORE', readers, token)
  if not expiry then
    return 0
  end
  if tonumber(expiry) <= now then
    redis.call('ZREM', readers, token)
    return 0
  end
  redis.call('ZADD', readers, now + ttl, token)
  extend(readers, ttl)
  extend_common()
  return 1
end
for k = 1, limit do
  local key = slot_key(lock, k)
  if redis.call('TYPE', key)['ok'] == 'string' and
      redis.call('GET', key) == token then
    redis.call('PEXPIRE', key, ttl)
    if limit > 1 then
      extend(lock .. ':limit', ttl)
    end
    extend_common()
    return 1
  end
end
return 0
