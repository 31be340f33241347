-- SPDX-License-Identifier: MIT
-- Acquire a lock (or one of its places), or tell how long to wait.
-- KEYS[1]  lock key      PREFIX{NAME}        (string: the exclusive holder's
--                        token; also slot 1 of a counted lock)
-- KEYS[2]  fence key     PREFIX{NAME}:fence  (string: the last fence issued)
-- KEYS[3]  queue key     PREFIX{NAME}:queue  (list of waiting tokens, FIFO)
-- ARGV[1]  token         128-bit random hex, one per acquisition
-- ARGV[2]  ttl           milliseconds
-- ARGV[3]  mode          'race': ignore the queue (--no-fair)
--                        'try':  fair, but do not join the queue (first try)
--                        'queue': fair, join the queue (or stay in it)
-- ARGV[4]  lease         milliseconds a queued waiter stays queued without
--                        coming back (fallback liveness for a vanished host)
-- ARGV[5]  limit         1: exclusive; N > 1: counted lock, N holders at once
-- ARGV[6]  shared        '1': a shared holder (any number of them together,
--                        never beside an exclusive holder)
-- ARGV[7..10]            who asks: host, pid, user, command line
-- ARGV[11] grace         milliseconds a queued waiter without a subscriber
--                        keeps its place (it may be resubscribing after a
--                        dropped connection; a killed one never comes back)
-- ARGV[12] seq           'queue' mode: the number of this registration (it
--                        rises with each attempt of the waiter)
--
-- Other keys beside the lock (same hash tag):
--   KEYS[1]..':slot:'..K     slot K > 1 of a counted lock (string: token)
--   KEYS[1]..':limit'        a counted lock's N, while it has holders
--   KEYS[1]..':readers'      shared holders (zset: token -> expiry, server
--                            time in ms); the key expires with the last one
--   KEYS[1]..':holder:'..T   who holds it with token T (hash: host pid user
--                            cmd since fence slot), same TTL as the hold
--   KEYS[1]..':waiter:'..T   a queued waiter's lease (hash: ttl seq excl host
--                            pid user cmd; the lease is its TTL)
-- Channels: KEYS[1]..':wake:'..T (a queued waiter is alive while subscribed
-- there, or for `grace` after it was last seen without a subscriber; it is
-- woken there), KEYS[1]..':acquired' (each acquisition).
--
-- Returns {1, fence, slot}  acquired (or already ours: a retry after a lost
--                           reply gets the same fence back); slot 0 when
--                           shared
--         {0, wait, count, host, pid, cmd, age}
--                           not now; wait = ms until a place may free up by
--                           expiry, -2 when a place is free but an earlier
--                           waiter goes first (then count = ms until that
--                           waiter's place lapses if it does not come back,
--                           or -1), -1 when a key without expiry
--                           holds it (foreign or stale: never touched);
--                           count and the rest describe the holders (one of
--                           them; age in ms), when known
--         {-1, type, key}   a key holds another type (never touched)
--         {-3, shape}       the lock is in use in another shape: 'exclusive',
--                           'shared' or 'limit:N'
-- Fences never go back, even when Redis lost its data: each is the larger of
-- the stored fence + 1 and the server clock in microseconds.
local lock, fence_key, queue = KEYS[1], KEYS[2], KEYS[3]
local token, ttl, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local limit, shared = tonumber(ARGV[5]), ARGV[6] == '1'
local readers, limit_key = lock .. ':readers', lock .. ':limit'

local function holder_key(t)
  return lock .. ':holder:' .. t
end

-- Takes place `slot` (0: a shared hold) at server time t for our token:
-- announces it, issues the next fence, writes the hold and the holder
-- record. Returns the fence (a number).
local function take(slot, t, now)
  -- Announce the acquisition first: it proves, before anything is written,
  -- that this user may PUBLISH, which release needs (a script error does
  -- not roll back earlier writes).
  redis.call('PUBLISH', lock .. ':acquired', '1')
  local fence, fence_text = next_fence(lock, t)
  set_fence(lock, fence_text, ttl)
  if slot == 0 then
    redis.call('ZADD', readers, now + ttl, token)
    extend(readers, ttl)
  else
    redis.call('SET', slot_key(lock, slot), token, 'PX', ttl)
  end
  redis.call('HSET', holder_key(token), 'host', ARGV[7], 'pid', ARGV[8],
      'user', ARGV[9], 'cmd', ARGV[10], 'since', now, 'fence', fence_text,
      'slot', slot)
  redis.call('PEXPIRE', holder_key(token), ttl)
  return fence
end

-- The usual case first: an exclusive lock nobody holds, uses in another
-- shape or waits for (none of its keys exist), in one look.
if limit == 1 and not shared and
    redis.call('EXISTS', lock, readers, limit_key, queue) == 0 then
  local t = redis.call('TIME')
  local fence = take(1, t, ms_of(t))
  if mode == 'queue' then
    redis.call('DEL', lock .. ':waiter:' .. token)
  end
  return {1, fence, 1}
end

local kind = redis.call('TYPE', lock)['ok']
if kind ~= 'none' and kind ~= 'string' then
  return {-1, kind, lock}
end
local rkind = redis.call('TYPE', readers)['ok']
if rkind ~= 'none' and rkind ~= 'zset' then
  return {-1, rkind, readers}
end
local t = redis.call('TIME')
local now = ms_of(t)
local nreaders = 0
if rkind == 'zset' then
  redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
  nreaders = redis.call('ZCARD', readers)
end

-- Everybody using a lock must agree on its shape.
local stored_limit = redis.call('GET', limit_key)
if shared or limit > 1 then
  if stored_limit and (shared or tonumber(stored_limit) ~= limit) then
    return {-3, 'limit:' .. stored_limit}
  end
  if not shared and nreaders > 0 then
    return {-3, 'shared'}
  end
  if not shared and not stored_limit and kind == 'string' then
    return {-3, 'exclusive'}
  end
elseif stored_limit then
  return {-3, 'limit:' .. stored_limit}
end

local function leave_queue()
  -- A first try has never been queued.
  if mode == 'queue' then
    if redis.call('DEL', lock .. ':waiter:' .. token) == 1 then
      redis.call('LREM', queue, 1, token)
    end
  end
end
local function fence_of(t)
  local f = redis.call('HGET', holder_key(t), 'fence') or
      redis.call('GET', fence_key) or '0'
  return tonumber(f)
end

-- Already ours: a retry after a lost reply.
if shared then
  if redis.call('ZSCORE', readers, token) then
    redis.call('ZADD', readers, now + ttl, token)
    extend(readers, ttl)
    redis.call('PEXPIRE', holder_key(token), ttl)
    extend(fence_key, ttl)
    leave_queue()
    return {1, fence_of(token), 0}
  end
else
  for k = 1, limit do
    local key = slot_key(lock, k)
    if (k == 1 or redis.call('TYPE', key)['ok'] == 'string') and
        redis.call('GET', key) == token then
      redis.call('PEXPIRE', key, ttl)
      redis.call('PEXPIRE', holder_key(token), ttl)
      extend(fence_key, ttl)
      if limit > 1 then
        extend(limit_key, ttl)
      end
      leave_queue()
      return {1, fence_of(token), k}
    end
  end
end

-- A free place, or how long until one may free up by expiry, and who is in
-- the way.
local slot, wait, blocker, count = nil, nil, nil, 0
if shared then
  if kind == 'none' then
    slot = 0
  else
    wait, blocker, count = redis.call('PTTL', lock), lock, 1
  end
elseif limit == 1 and kind ~= 'none' then
  wait, blocker, count = redis.call('PTTL', lock), lock, 1
elseif limit == 1 and nreaders > 0 then
  local last = redis.call('ZRANGE', readers, -1, -1, 'WITHSCORES')
  wait, count = tonumber(last[2]) - now, nreaders
  blocker = redis.call('ZRANGE', readers, 0, 0)[1]
elseif limit == 1 then
  slot = 1
else
  for k = 1, limit do
    local p = redis.call('PTTL', slot_key(lock, k))
    if p == -2 then
      slot = slot or k
    else
      count = count + 1
      if p == -1 then
        return {0, -1}
      end
      if not wait or p < wait then
        wait = p
      end
      blocker = blocker or slot_key(lock, k)
    end
  end
end

-- In fair modes the first live waiter goes first. A waiter found without
-- a subscriber keeps its place for the grace only (a killed process never
-- resubscribes; a live one whose connection dropped does, and renews its
-- lease); waiters whose lease ran out are dropped here.
local first, first_lapses = false, -1
if mode ~= 'race' then
  for _ = 1, 100 do
    first = redis.call('LINDEX', queue, 0)
    if not first or first == token then
      break
    end
    local lease_key = lock .. ':waiter:' .. first
    local left = redis.call('PTTL', lease_key)
    if left > 0 then
      if redis.call('PUBSUB', 'NUMSUB', lock .. ':wake:' .. first)[2] == 0 then
        if left > tonumber(ARGV[11]) then
          left = tonumber(ARGV[11])
          redis.call('PEXPIRE', lease_key, left)
        end
        first_lapses = left
      end
      break
    end
    redis.call('LPOP', queue)
    redis.call('DEL', lease_key)
    first = false
  end
end

if slot and (not first or first == token) then
  local fence = take(slot, t, now)
  if limit > 1 then
    if stored_limit then
      extend(limit_key, ttl)
    else
      redis.call('SET', limit_key, limit, 'PX', ttl)
    end
  end
  leave_queue()
  -- The first subscribed waiter learns the news: it may take another place
  -- (a row of shared waiters, several free slots), or at least the new
  -- holder's TTL (which bounds its sleep: this holder may crash and publish
  -- nothing). Waiters ahead of it without a subscriber keep their place for
  -- the grace only, as in release.lua.
  if mode ~= 'race' then
    wake_first_subscribed(lock, queue, ARGV[11])
  end
  return {1, fence, slot}
end
if mode == 'queue' then
  if not redis.call('LPOS', queue, token) then
    redis.call('RPUSH', queue, token)
  end
  -- The waiter's lease also says what a release needs to hand the lock
  -- straight to it (release.lua): its TTL, whether it wants the exclusive
  -- lock (only those are handed over), who it is, and the number of this
  -- registration (a hand-over names it, so the waiter can tell a hand-over
  -- from before its latest attempt, which must not count).
  local lease_key = lock .. ':waiter:' .. token
  redis.call('HSET', lease_key, 'ttl', ttl, 'seq', ARGV[12], 'excl',
      (limit == 1 and not shared) and '1' or '0', 'host', ARGV[7],
      'pid', ARGV[8], 'user', ARGV[9], 'cmd', ARGV[10])
  redis.call('PEXPIRE', lease_key, ARGV[4])
  redis.call('PEXPIRE', queue, ARGV[4])
end
if not slot then
  if wait == -1 then
    return {0, -1}
  end
  -- Who is in the way (for the waiter's message).
  local holder = blocker
  if blocker == lock or (blocker and blocker:sub(1, #lock + 6) ==
      lock .. ':slot:') then
    holder = redis.call('GET', blocker)
  end
  local who = holder and redis.call('HMGET', holder_key(holder), 'host',
      'pid', 'cmd', 'since') or {}
  local age = who[4] and (now - tonumber(who[4])) or -1
  return {0, math.max(wait, 0), count, who[1] or '', who[2] or '',
      who[3] or '', age}
end
-- A place is free, but a live waiter is first: it may be asleep on a long
-- timer (the key was deleted or expired unannounced), so wake it.
redis.call('PUBLISH', lock .. ':wake:' .. first, '1')
return {0, -2, first_lapses}
