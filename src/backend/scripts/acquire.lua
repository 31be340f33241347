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
-- ARGV[13] pubsub        optional: 'sharded' on a Redis Cluster (SPUBLISH)
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
--         {-1, type, key}   a key the attempt would read or write holds
--                           another type: nothing is written
--         {-3, shape}       the lock is in use in another shape: 'exclusive',
--                           'shared' or 'limit:N'
-- Fences never go back, even when Redis lost its data: each is the larger of
-- the stored fence + 1 and the server clock in microseconds.
local lock, fence_key, queue = KEYS[1], KEYS[2], KEYS[3]
local token, ttl, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local limit, shared = tonumber(ARGV[5]), ARGV[6] == '1'
sharded_pubsub = ARGV[13] == 'sharded'
local readers, limit_key = lock .. ':readers', lock .. ':limit'
local lacking = lacking_rights(k_rights, lock, lock .. ':acquired')
if lacking then
  return lacking
end
local lease_key = lock .. ':waiter:' .. token

local function holder_key(t)
  return lock .. ':holder:' .. t
end

-- Takes place `slot` (0: a shared hold) at server time `now` for our
-- token with the fence from next_fence: announces it, issues the fence,
-- writes the hold and the holder record. The caller has checked every key
-- this writes.
local function take(slot, now, fence_text)
  -- Announce the acquisition before anything is written: it proves that
  -- this user may PUBLISH, which release needs (a script error does not
  -- roll back earlier writes).
  publish(lock .. ':acquired', '1')
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
end

-- The usual case first: an exclusive lock nobody holds, uses in another
-- shape or waits for (none of its keys exist, nor our holder record or
-- lease), in one look. The fence key, the only other key written, is read
-- before anything is written.
if limit == 1 and not shared and
    redis.call('EXISTS', lock, readers, limit_key, queue, holder_key(token),
        lease_key) == 0 then
  local t = redis.call('TIME')
  local fence, fence_text = next_fence(lock, t)
  if not fence then
    return {-1, fence_text, fence_key}
  end
  take(1, ms_of(t), fence_text)
  return {1, fence, 1}
end

-- Everything below reads first and writes last: each key read or written
-- is checked before the first write (the lock, readers and limit keys
-- here, the slots and the queue as they are read, the rest just before the
-- writes that need them).
local kind = redis.call('TYPE', lock)['ok']
if kind ~= 'none' and kind ~= 'string' then
  return {-1, kind, lock}
end
local rkind = redis.call('TYPE', readers)['ok']
if rkind ~= 'none' and rkind ~= 'zset' then
  return {-1, rkind, readers}
end
local stored_limit, lbad = read(redis.pcall('GET', limit_key), limit_key)
if lbad then
  return {-1, lbad, limit_key}
end
local t = redis.call('TIME')
local now = ms_of(t)
local nreaders = 0
if rkind == 'zset' then
  nreaders = redis.call('ZCOUNT', readers, '(' .. now, '+inf')
end

-- Everybody using a lock must agree on its shape.
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

-- What leaving the queue writes (a first try has never been queued);
-- the queue itself only when it has not been read yet.
local function leave_queue_keys(keys, queue_read)
  if mode == 'queue' then
    -- (An older godislock's lease is a string.)
    keys[#keys + 1] = {lease_key, 'hash', 'string'}
    if not queue_read then
      keys[#keys + 1] = {queue, 'list'}
    end
  end
  return keys
end
local function leave_queue()
  if mode == 'queue' then
    if redis.call('DEL', lease_key) == 1 then
      redis.call('LREM', queue, 1, token)
    end
  end
end
local function fence_of(t)
  local f = redis.call('HGET', holder_key(t), 'fence') or
      redis.call('GET', fence_key) or '0'
  return tonumber(f)
end

-- Already ours: a retry after a lost reply (rare: plain TYPEs).
local retry_slot = nil
if shared then
  -- (An expired entry of ours is no hold.)
  local expiry = rkind == 'zset' and redis.call('ZSCORE', readers, token)
  if expiry and tonumber(expiry) > now then
    retry_slot = 0
  end
else
  for k = 1, limit do
    local key = slot_key(lock, k)
    -- pcall: a slot of another type is foreign (the lock key's type is
    -- known already).
    local holder, bad = read(redis.pcall('GET', key), key)
    if bad then
      return {-1, bad, key}
    end
    if holder == token then
      retry_slot = k
      break
    end
  end
end
if retry_slot then
  local bad = first_alien(leave_queue_keys({{holder_key(token), 'hash'},
      {fence_key, 'string'}}))
  if bad then
    return bad
  end
  if retry_slot == 0 then
    redis.call('ZADD', readers, now + ttl, token)
    extend(readers, ttl)
  else
    redis.call('PEXPIRE', slot_key(lock, retry_slot), ttl)
    if limit > 1 then
      extend(limit_key, ttl)
    end
  end
  redis.call('PEXPIRE', holder_key(token), ttl)
  extend(fence_key, ttl)
  leave_queue()
  return {1, fence_of(token), retry_slot}
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
  -- The shared holder whose lease ends last.
  local last = redis.call('ZRANGE', readers, -1, -1, 'WITHSCORES')
  wait, count, blocker = tonumber(last[2]) - now, nreaders, last[1]
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
-- lease); waiters whose lease ran out are dropped (below, with the other
-- writes), at most 100 per attempt: the waiter behind them is then not
-- looked at but still goes first, and the next attempt, at once, goes on.
local first, first_lapses, dead, shorten = false, -1, 0, nil
local grace = tonumber(ARGV[11])
if mode ~= 'race' then
  for i = 0, 100 do
    local bad
    first, bad = read(redis.pcall('LINDEX', queue, i), queue)
    if bad then
      return {-1, bad, queue}
    end
    if not first or first == token then
      break
    end
    if i == 100 then
      first_lapses = 0
      break
    end
    local waiter = lock .. ':waiter:' .. first
    local left = redis.call('PTTL', waiter)
    if left > 0 then
      if subscribers(lock .. ':wake:' .. first) == 0 then
        if left > grace then
          local lkind = alien(waiter, 'hash', 'string')
          if lkind then
            return {-1, lkind, waiter}
          end
          left, shorten = grace, waiter
        end
        first_lapses = left
      end
      break
    end
    dead = dead + 1
  end
end
-- The writes the look above asked for.
local function tidy_queue()
  for _ = 1, dead do
    redis.call('LPOP', queue)
  end
  if shorten then
    redis.call('PEXPIRE', shorten, grace)
  end
end

if slot and (not first or first == token) then
  local bad = first_alien(leave_queue_keys({{holder_key(token), 'hash'}}, true))
  if bad then
    return bad
  end
  local fence, fence_text = next_fence(lock, t)
  if not fence then
    return {-1, fence_text, fence_key}
  end
  -- The first subscribed waiter behind us learns the news: it may take
  -- another place (a row of shared waiters, several free slots), or at
  -- least the new holder's TTL (which bounds its sleep: this holder may
  -- crash and publish nothing). Waiters ahead of it without a subscriber
  -- keep their place for the grace only, as in release.lua.
  local woken = nil
  if first == token then
    woken, bad = wake_first_subscribed(lock, queue, ARGV[11], dead + 1)
    if not woken then
      return bad
    end
  end
  take(slot, now, fence_text)
  if rkind == 'zset' then
    redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
  end
  if limit > 1 then
    if stored_limit then
      extend(limit_key, ttl)
    else
      redis.call('SET', limit_key, limit, 'PX', ttl)
    end
  end
  tidy_queue()
  leave_queue()
  if woken then
    woken()
  end
  return {1, fence, slot}
end

-- Not now. Who is in the way, read before anything is written.
local reply
if not slot then
  if wait == -1 then
    reply = {0, -1}
  else
    local holder = blocker
    if blocker == lock or (blocker and blocker:sub(1, #lock + 6) ==
        lock .. ':slot:') then
      holder = redis.call('GET', blocker)
    end
    local who = {}
    if holder then
      local bad
      who, bad = read(redis.pcall('HMGET', holder_key(holder), 'host',
          'pid', 'cmd', 'since'), holder_key(holder))
      if bad then
        return {-1, bad, holder_key(holder)}
      end
    end
    local age = who[4] and (now - tonumber(who[4])) or -1
    reply = {0, math.max(wait, 0), count, who[1] or '', who[2] or '',
        who[3] or '', age}
  end
else
  reply = {0, -2, first_lapses}
end
if mode == 'queue' then
  -- The waiter's lease also says what a release needs to hand the lock
  -- straight to it (release.lua): its TTL, whether it wants the exclusive
  -- lock (only those are handed over), who it is, and the number of this
  -- registration (a hand-over names it, so the waiter can tell a hand-over
  -- from before its latest attempt, which must not count). It is the first
  -- write: one of another type fails it, and nothing is written.
  local _, bad = read(redis.pcall('HSET', lease_key, 'ttl', ttl, 'seq',
      ARGV[12], 'excl', (limit == 1 and not shared) and '1' or '0',
      'host', ARGV[7], 'pid', ARGV[8], 'user', ARGV[9], 'cmd', ARGV[10]),
      lease_key)
  if bad then
    return {-1, bad, lease_key}
  end
  redis.call('PEXPIRE', lease_key, ARGV[4])
  tidy_queue()
  if not redis.call('LPOS', queue, token) then
    redis.call('RPUSH', queue, token)
  end
  redis.call('PEXPIRE', queue, ARGV[4])
else
  tidy_queue()
end
if slot then
  -- A place is free, but a waiter is first: it may be asleep on a long
  -- timer (the key was deleted or expired unannounced), so wake it.
  publish(lock .. ':wake:' .. first, '1')
end
return reply
