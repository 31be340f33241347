-- SPDX-License-Identifier: MIT
-- Release a hold of ours and wake who goes next; also leave the queue (see
-- acquire.lua for the keys).
-- KEYS[1]  lock key         PREFIX{NAME}
-- KEYS[2]  release channel  PREFIX{NAME}:released  (--no-fair waiters)
-- KEYS[3]  queue key        PREFIX{NAME}:queue
-- ARGV[1]  token
-- ARGV[2]  limit            as for acquire
-- ARGV[3]  shared           as for acquire
-- ARGV[4]  grace            as for acquire
-- ARGV[5]  pubsub           as for acquire
-- Returns 1 when we held it and no longer do (it was handed over to the
-- next waiter, or that waiter was woken), 0 when it was not ours (nothing
-- of anybody else's is touched). Either way our token leaves the queue (a
-- waiter giving up calls this). A slot or readers key of another type
-- holds no hold of ours: when no hold of ours is found beside it, 0 and
-- nothing is written. {-1, type, key} when another key it reads or writes
-- holds another type: then nothing is written (not even our hold released:
-- it lapses with its TTL).
-- Only the first subscribed queued waiter is woken, on its own channel
-- KEYS[1]..':wake:'..TOKEN: a handoff costs the same with 1 or 500 waiters.
-- Waiters whose lease ran out are dropped on the way; those found without a
-- subscriber keep their place for the grace only (see acquire.lua), and the
-- waiter woken behind them learns how long that is. The fence key is left
-- to expire with its TTL so that the next fence still rises if the clock
-- steps back.
local lock, token = KEYS[1], ARGV[1]
local limit, shared = tonumber(ARGV[2]), ARGV[3] == '1'
sharded_pubsub = ARGV[5] == 'sharded'
local queue = KEYS[3]
local holder_key = lock .. ':holder:' .. token
local lease_key = lock .. ':waiter:' .. token
local lacking = lacking_rights(k_rights, lock, KEYS[2])
if lacking then
  return lacking
end
-- Every redis.call costs a few microseconds more than its command, and
-- this script is on the handoff's path: calls are merged where they can be,
-- and it reads (checking each key read or written) before its first write.
local ours, ours_key, wake = false, nil, false
local readers = lock .. ':readers'
local rkind, now = nil, nil
if shared then
  rkind = redis.call('TYPE', readers)['ok']
  if rkind ~= 'none' and rkind ~= 'zset' then
    return 0
  end
  if rkind == 'zset' then
    now = ms_of(redis.call('TIME'))
    local expiry = redis.call('ZSCORE', readers, token)
    ours = expiry and tonumber(expiry) > now
  end
else
  local alien_slot = false
  for k = 1, limit do
    local key = slot_key(lock, k)
    -- pcall: a key of another type is not ours (and is not touched).
    local holder = redis.pcall('GET', key)
    alien_slot = alien_slot or type(holder) == 'table'
    if holder == token then
      ours, ours_key = true, key
      break
    end
    -- Deleted or expired behind our back: the queue still needs the kick,
    -- its first waiter may sleep on a long timer.
    if holder == false then
      wake = true
    end
  end
  if alien_slot and not ours then
    return 0
  end
  wake = wake or ours
end
-- Our holder record goes (one TYPE: it exists); a waiter giving up (or a
-- hold found lost) also drops its lease and leaves the queue: a holder is
-- not in it (its acquisition or hand-over took it out), so its release
-- neither looks at its lease nor scans the queue.
local bad = alien(holder_key, 'hash')
if bad then
  return {-1, bad, holder_key}
end
if not ours then
  -- (An older godislock's lease is a string.)
  for _, k in ipairs({{lease_key, 'hash', 'string'}, {queue, 'list'}}) do
    bad = alien(k[1], k[2], k[3])
    if bad then
      return {-1, bad, k[1]}
    end
  end
end
if ours and limit > 1 then
  bad = alien(lock .. ':limit', 'string')
  if bad then
    return {-1, bad, lock .. ':limit'}
  end
end

-- An exclusive hold of ours goes straight to the first queued waiter when
-- it is subscribed and its lease says how (acquire.lua): the waiter starts
-- its command on the message alone, without a request of its own. The
-- message is 'granted SEQ FENCE', SEQ being the number of the waiter's
-- registration that the hand-over answers (a waiter must not act on one
-- that answers an older registration than its latest attempt's).
-- Anything else (a waiter ahead without a subscriber keeps its place for
-- the grace, a lease without a TTL) falls back to waking as below.
-- Returns 'handed', 'empty' (nobody queued), 'wake', or nil and the reply
-- for a key of another type; and the number of dead waiters at the head
-- (their leases ran out), which the caller drops.
local function hand_over()
  for i = 0, 99 do
    local w, qbad = read(redis.pcall('LINDEX', queue, i), queue)
    if qbad then
      return nil, {-1, qbad, queue}
    end
    if not w then
      return 'empty', i
    end
    local lease = lock .. ':waiter:' .. w
    -- pcall: an older godislock's lease is a string, never handed to.
    local f, lbad = read(redis.pcall('HMGET', lease, 'ttl', 'seq', 'excl'),
        lease)
    if lbad then
      if lbad ~= 'string' then
        return nil, {-1, lbad, lease}
      end
      return 'wake', i
    end
    local ttl = tonumber(f[1])
    if ttl then
      -- Only to a waiter for the exclusive lock (a shared waiter ahead is
      -- woken and comes in on its own, with the readers behind it).
      if ttl < 1 or not f[2] or f[3] ~= '1' then
        return 'wake', i
      end
      local t = redis.call('TIME')
      local fence, fence_text = next_fence(lock, t)
      if not fence then
        return nil, {-1, fence_text, lock .. ':fence'}
      end
      -- The new holder's record is made from the lease (one EXISTS: it
      -- does not exist).
      local holder = lock .. ':holder:' .. w
      if redis.call('EXISTS', holder) == 1 then
        local hbad = alien(holder, 'hash')
        if hbad then
          return nil, {-1, hbad, holder}
        end
      end
      -- Only to a waiter subscribed here, asked before the announcement:
      -- a 'granted' message must never go out without the hand-over, as
      -- a message published here also reaches the replicas, and a waiter
      -- with a stale view (a failover it has not heard of yet) may be
      -- subscribed on one. Announce first (nothing is written yet, and a
      -- failed PUBLISH (ACL) leaves the lock as it was).
      local wake_channel = lock .. ':wake:' .. w
      if subscribers(wake_channel) == 0 then
        return 'wake', i
      end
      publish(wake_channel, 'granted ' .. f[2] .. ' ' .. fence_text)
      redis.call('DEL', holder_key)
      -- The only hold now is the new one: the fence key lives as long.
      redis.call('SET', lock .. ':fence', fence_text, 'PX', ttl)
      redis.call('SET', lock, w, 'PX', ttl)
      -- The lease becomes the holder record (it keeps ttl, seq and excl).
      redis.call('RENAME', lease, holder)
      redis.call('HSET', holder, 'since', ms_of(t), 'fence', fence_text,
          'slot', 1)
      redis.call('PEXPIRE', holder, ttl)
      for _ = 0, i do
        redis.call('LPOP', queue)
      end
      return 'handed', i
    end
    -- Its lease ran out: it is gone. (A lease without these fields is
    -- left to the wake-up below.)
    if redis.call('EXISTS', lease) == 1 then
      return 'wake', i
    end
  end
  return 'wake', 100
end
local handing, dead = false, 0
if ours and limit == 1 and not shared then
  handing, dead = hand_over()
  if not handing then
    return dead  -- the reply for a key of another type
  end
  if handing == 'handed' then
    return 1
  end
end
if shared and rkind == 'zset' then
  -- Only the last shared holder's leaving lets anybody new in.
  wake = redis.call('ZCOUNT', readers, '(' .. now, '+inf') ==
      (ours and 1 or 0)
end
if shared then
  -- Only looked at: any type answers EXISTS.
  wake = wake and redis.call('EXISTS', lock) == 0
end
-- A place is free (or about to be): wake who goes next, looking before
-- writing. Wake before deleting: a failed PUBLISH (ACL) then leaves the
-- lock as it was, and nobody can act on either before this script has
-- finished.
local woken = nil
if wake and handing ~= 'empty' then
  woken, bad = wake_first_subscribed(lock, queue, ARGV[4], dead)
  if not woken then
    return bad
  end
end
if wake then
  publish(KEYS[2], '1')
end
-- The writes.
if ours then
  redis.call('DEL', holder_key)
else
  redis.call('DEL', holder_key, lease_key)
  redis.call('LREM', queue, 1, token)
end
for _ = 1, dead do
  redis.call('LPOP', queue)
end
if woken then
  woken()
end
if rkind == 'zset' then
  redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
end
if not ours then
  return 0
end
if shared then
  redis.call('ZREM', readers, token)
  return 1
end
redis.call('DEL', ours_key)
if limit > 1 then
  -- The last holder of a counted lock frees its shape too.
  local held = false
  for k = 1, limit do
    if redis.call('EXISTS', slot_key(lock, k)) == 1 then
      held = true
      break
    end
  end
  if not held then
    redis.call('DEL', lock .. ':limit')
  end
end
return 1
