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
-- Returns 1 when we held it and no longer do (it was handed over to the
-- next waiter, or that waiter was woken), 0 when it was not ours (nothing
-- of anybody else's is touched). Either way our token leaves the queue (a
-- waiter giving up calls this).
-- Only the first subscribed queued waiter is woken, on its own channel
-- KEYS[1]..':wake:'..TOKEN: a handoff costs the same with 1 or 500 waiters.
-- Waiters whose lease ran out are dropped on the way; those found without a
-- subscriber keep their place for the grace only (see acquire.lua), and the
-- waiter woken behind them learns how long that is. The fence key is left
-- to expire with its TTL so that the next fence still rises if the clock
-- steps back.
local lock, token = KEYS[1], ARGV[1]
local limit, shared = tonumber(ARGV[2]), ARGV[3] == '1'
-- Every redis.call costs a few microseconds more than its command, and
-- this script is on the handoff's path: calls are merged where they can be.
redis.call('DEL', lock .. ':holder:' .. token, lock .. ':waiter:' .. token)
local ours, ours_key, wake = false, nil, false
local readers = lock .. ':readers'
if shared then
  if redis.call('TYPE', readers)['ok'] == 'zset' then
    local t = redis.call('TIME')
    local now = ms_of(t)
    local expiry = redis.call('ZSCORE', readers, token)
    ours = expiry and tonumber(expiry) > now
    redis.call('ZREMRANGEBYSCORE', readers, '-inf', now)
    -- Only the last shared holder's leaving lets anybody new in.
    wake = redis.call('ZCARD', readers) == (ours and 1 or 0)
  end
  wake = wake and redis.call('EXISTS', lock) == 0
else
  for k = 1, limit do
    local key = slot_key(lock, k)
    -- pcall: a key of another type is not ours (and never touched).
    local holder = redis.pcall('GET', key)
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
  wake = wake or ours
end
-- A waiter giving up (or a hold found lost) leaves the queue; a holder is
-- not in it (its acquisition or hand-over took it out), so its release
-- does not scan the queue.
if not ours then
  redis.call('LREM', KEYS[3], 1, token)
end
-- An exclusive hold of ours goes straight to the first queued waiter when
-- it is subscribed and its lease says how (acquire.lua): the waiter starts
-- its command on the message alone, without a request of its own. The
-- message is 'granted SEQ FENCE', SEQ being the number of the waiter's
-- registration that the hand-over answers (a waiter must not act on one
-- that answers an older registration than its latest attempt's).
-- Anything else (a waiter ahead without a subscriber keeps its place for
-- the grace, a lease without a TTL) falls back to waking as below.
-- Returns 'handed', 'empty' (nobody queued), or 'wake'.
local function hand_over()
  local queue = KEYS[3]
  for _ = 1, 100 do
    local w = redis.call('LINDEX', queue, 0)
    if not w then
      return 'empty'
    end
    local lease_key = lock .. ':waiter:' .. w
    -- pcall: an older godislock's lease is a string, never handed to.
    local f = redis.pcall('HMGET', lease_key, 'ttl', 'seq', 'excl')
    if f.err then
      return 'wake'
    end
    local ttl = tonumber(f[1])
    if ttl then
      -- Only to a waiter for the exclusive lock (a shared waiter ahead is
      -- woken and comes in on its own, with the readers behind it).
      if ttl < 1 or not f[2] or f[3] ~= '1' then
        return 'wake'
      end
      local t = redis.call('TIME')
      local _, fence_text = next_fence(lock, t)
      -- Announce first, which also tells whether the waiter is subscribed
      -- (nothing is written yet if not, and a failed PUBLISH (ACL) leaves
      -- the lock as it was).
      if redis.call('PUBLISH', lock .. ':wake:' .. w,
          'granted ' .. f[2] .. ' ' .. fence_text) == 0 then
        return 'wake'
      end
      -- The only hold now is the new one: the fence key lives as long.
      redis.call('SET', lock .. ':fence', fence_text, 'PX', ttl)
      redis.call('SET', lock, w, 'PX', ttl)
      -- The lease becomes the holder record (it keeps ttl, seq and excl).
      local holder = lock .. ':holder:' .. w
      redis.call('RENAME', lease_key, holder)
      redis.call('HSET', holder, 'since', ms_of(t), 'fence', fence_text,
          'slot', 1)
      redis.call('PEXPIRE', holder, ttl)
      redis.call('LPOP', queue)
      return 'handed'
    end
    -- Its lease ran out: it is gone. (A lease without these fields is
    -- left to the wake-up below.)
    if redis.call('EXISTS', lease_key) == 1 then
      return 'wake'
    end
    redis.call('LPOP', queue)
  end
  return 'wake'
end
local handing = ours and limit == 1 and not shared and hand_over()
if handing == 'handed' then
  return 1
end
if not wake then
  if ours then
    redis.call('ZREM', readers, token)
  end
  return ours and 1 or 0
end
-- A place is free (or about to be): wake who goes next. Wake before
-- deleting: a failed PUBLISH (ACL) then leaves the lock as it was, and
-- nobody can act on either before this script has finished.
redis.call('PUBLISH', KEYS[2], '1')
if handing ~= 'empty' then
  wake_first_subscribed(lock, KEYS[3], ARGV[4])
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
