-- SPDX-License-Identifier: MIT
-- Tell who holds a lock (see acquire.lua for the keys); with ARGV[1] =
-- 'break', also release every hold at once (godislock release --force).
-- KEYS[1]  lock key         PREFIX{NAME}
-- KEYS[2]  fence key        PREFIX{NAME}:fence
-- KEYS[3]  queue key        PREFIX{NAME}:queue
-- KEYS[4]  release channel  PREFIX{NAME}:released
-- ARGV[1]  'look' or 'break'
-- ARGV[2]  grace           as for acquire
-- ARGV[3]  pubsub          as for acquire
-- Returns {kind, limit, last_fence, waiting, holder...} where kind is 'free',
-- 'exclusive', 'limit' (counted) or 'shared', and each holder is
-- {ttl_ms, host, pid, user, cmd, age_ms, fence, slot} ('' and -1 where the
-- holder record is missing: the holder is gone, or an older godislock);
-- or {'foreign', detail, key} for a key godislock did not make (another
-- type, or no TTL) among those it reads or writes: never touched, not even
-- by 'break', which then writes nothing at all.
local lock = KEYS[1]
sharded_pubsub = ARGV[3] == 'sharded'
local readers, limit_key = lock .. ':readers', lock .. ':limit'
-- A look needs only the read-only rule; breaking needs the whole one.
local lacking
if ARGV[1] == 'break' then
  lacking = lacking_rights(k_rights, lock, KEYS[4])
else
  lacking = lacking_rights(k_read_rights, lock)
end
if lacking then
  return lacking
end
local t = redis.call('TIME')
local now = ms_of(t)

-- A key of another type than `want`, or (when `ttl_too`) without a TTL.
local function foreign(key, want, ttl_too)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= want then
    return {'foreign', kind, key}
  end
  if ttl_too and kind ~= 'none' and redis.call('PTTL', key) == -1 then
    return {'foreign', 'no-ttl', key}
  end
  return nil
end
local bad = foreign(lock, 'string', true) or
    foreign(readers, 'zset', true) or foreign(limit_key, 'string', true) or
    foreign(KEYS[2], 'string') or foreign(KEYS[3], 'list')
if bad then
  return bad
end

local kind, limit = 'free', 1
local holds = {}  -- {key or false, token, ttl}
local stored_limit = redis.call('GET', limit_key)
if stored_limit then
  kind, limit = 'limit', tonumber(stored_limit)
  for k = 1, limit do
    local key = slot_key(lock, k)
    local bad_slot = foreign(key, 'string', true)
    if bad_slot then
      return bad_slot
    end
    local token = redis.call('GET', key)
    if token then
      holds[#holds + 1] = {key, token, redis.call('PTTL', key), k}
    end
  end
elseif redis.call('EXISTS', lock) == 1 then
  kind = 'exclusive'
  holds[1] = {lock, redis.call('GET', lock), redis.call('PTTL', lock), 1}
else
  -- Expired shared holds are skipped here (and dropped by 'break').
  local entries = redis.call('ZRANGE', readers, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    local left = tonumber(entries[i + 1]) - now
    if left > 0 then
      kind = 'shared'
      holds[#holds + 1] = {false, entries[i], left, 0}
    end
  end
end

local out = {kind, limit, tonumber(redis.call('GET', KEYS[2]) or '0') or 0,
    redis.call('LLEN', KEYS[3])}
for _, h in ipairs(holds) do
  local rec = lock .. ':holder:' .. h[2]
  local r, rbad = read(redis.pcall('HMGET', rec, 'host', 'pid', 'user', 'cmd',
      'since', 'fence'), rec)
  if rbad then
    return {'foreign', rbad, rec}
  end
  out[#out + 1] = {h[3], r[1] or '', r[2] or '', r[3] or '', r[4] or '',
      r[5] and (now - tonumber(r[5])) or -1, tonumber(r[6] or '-1') or -1, h[4]}
end
if ARGV[1] == 'break' and #holds > 0 then
  -- Waiters move at once: racers on the release channel, the queue's first
  -- live waiter on its own channel (dead ones are dropped on the way).
  -- Looked at before anything is written.
  local woken, wbad = wake_first_subscribed(lock, KEYS[3], ARGV[2], 0)
  if not woken then
    return {'foreign', wbad[2], wbad[3]}
  end
  publish(KEYS[4], '1')
  for _, h in ipairs(holds) do
    if h[1] then
      redis.call('DEL', h[1])
    else
      redis.call('ZREM', readers, h[2])
    end
    redis.call('DEL', lock .. ':holder:' .. h[2])
  end
  redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
  redis.call('DEL', limit_key)
  woken()
end
return out
