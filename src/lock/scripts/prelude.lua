-- SPDX-License-Identifier: MIT
-- Shared by the scripts: the build puts this text in front of each of them
-- (cmake/embed_lua.cmake), so that each is still one self-contained EVAL.

-- The key of slot K of lock LOCK: slot 1 is the lock key itself (the
-- exclusive holder's), slot K > 1 of a counted lock is LOCK:slot:K.
local function slot_key(lock, k)
  if k == 1 then
    return lock
  end
  return lock .. ':slot:' .. k
end

-- The server clock in milliseconds, from a TIME reply.
local function ms_of(time)
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Sets a key's TTL to at least ttl ms, never shortening it (the fence,
-- limit and readers keys are shared by several holders).
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- The next fence of lock LOCK, from the server clock `time` (a TIME reply),
-- as a number and as text: the larger of the stored fence + 1 and the clock
-- in microseconds, so that fences never go back, even when Redis lost its
-- data. Reads only; set_fence stores it.
local function next_fence(lock, time)
  local fence = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local last = tonumber(redis.call('GET', lock .. ':fence') or '0') or 0
  if last >= fence then
    fence = last + 1
  end
  return fence, string.format('%.0f', fence)
end

-- Stores a fence issued for a hold of ttl ms; the fence key lives at least
-- as long as that hold (and is left to expire after the release).
local function set_fence(lock, fence_text, ttl)
  local key = lock .. ':fence'
  redis.call('SET', key, fence_text, 'PX',
      math.max(redis.call('PTTL', key), ttl))
end

-- Wakes the first subscribed waiter in `queue` (a list of tokens) on its
-- channel LOCK:wake:TOKEN. Waiters ahead of it whose lease LOCK:waiter:TOKEN
-- ran out are dropped; those with a lease but no subscriber keep their place
-- for `grace` ms only (a live waiter whose connection dropped resubscribes
-- within it; a killed one never does). Looks at 100 waiters at most.
local function wake_first_subscribed(lock, queue, grace)
  local i = 0
  for _ = 1, 100 do
    local w = redis.call('LINDEX', queue, i)
    if not w then
      return
    end
    local lease_key = lock .. ':waiter:' .. w
    local left = redis.call('PTTL', lease_key)
    if left > 0 then
      if redis.call('PUBLISH', lock .. ':wake:' .. w, '1') > 0 then
        return
      end
      if left > tonumber(grace) then
        redis.call('PEXPIRE', lease_key, grace)
      end
      i = i + 1
    else
      redis.call('LREM', queue, 1, w)
      redis.call('DEL', lease_key)
    end
  end
end
