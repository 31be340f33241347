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

-- On a Redis Cluster a PUBLISH goes to every node of the cluster, and a
-- waiter subscribed on any node hears it; a shard channel (SPUBLISH, Redis
-- 7) stays with the slot's shard, where its waiters subscribe, and is named
-- like a key of the lock (same hash tag). The caller says which one its
-- waiters use: each script that publishes sets this from its last argument
-- ('sharded'), so that single servers older than 7.0 keep working.
local sharded_pubsub = false

-- Publishes `message` on `channel` as the waiters listen: the number of
-- subscribers that got it (on this node).
local function publish(channel, message)
  if sharded_pubsub then
    return redis.call('SPUBLISH', channel, message)
  end
  return redis.call('PUBLISH', channel, message)
end

-- The number of clients of this node subscribed to `channel` as the
-- waiters subscribe (they do so on the slot's master, where this runs).
local function subscribers(channel)
  if sharded_pubsub then
    return redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2]
  end
  return redis.call('PUBSUB', 'NUMSUB', channel)[2]
end

-- Sets a key's TTL to at least ttl ms, never shortening it (the fence,
-- limit and readers keys are shared by several holders).
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- A key of the layout that holds another type than godislock gives it was
-- not made by godislock. Each script looks before its first write and then
-- returns {-1, type, key} (status: {'foreign', type, key}) without writing
-- anything: Redis does not roll back a script that fails half-way.

-- The type of `key` when it exists with another type than `want` (or
-- `also`), else nil. One TYPE.
local function alien(key, want, also)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= want and kind ~= also then
    return kind
  end
  return nil
end

-- The foreign-key reply {-1, type, key} for the first of `keys` ({key,
-- type[, other type]}) that exists with another type, or nil. One TYPE
-- each.
local function first_alien(keys)
  for _, k in ipairs(keys) do
    local bad = alien(k[1], k[2], k[3])
    if bad then
      return {-1, bad, k[1]}
    end
  end
  return nil
end

-- The reply of a pcall'd read of `key`; or nil and the key's type when the
-- key holds another type (WRONGTYPE). Other errors are raised as by
-- redis.call. Costs nothing more than the read unless the key is foreign.
local function read(reply, key)
  if type(reply) == 'table' and reply.err then
    if string.sub(reply.err, 1, 9) == 'WRONGTYPE' then
      return nil, redis.call('TYPE', key)['ok']
    end
    error(reply)
  end
  return reply
end

-- The next fence of lock LOCK, from the server clock `time` (a TIME reply),
-- as a number and as text: the larger of the stored fence + 1 and the clock
-- in microseconds, so that fences never go back, even when Redis lost its
-- data. Reads only; set_fence stores it. Returns nil and the type of the
-- fence key when it is not a string.
local function next_fence(lock, time)
  local fence = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local key = lock .. ':fence'
  local stored, bad = read(redis.pcall('GET', key), key)
  if bad then
    return nil, bad
  end
  local last = tonumber(stored or '0') or 0
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
-- channel LOCK:wake:TOKEN, from index `from` (0: the head) on. Waiters ahead
-- of it whose lease LOCK:waiter:TOKEN ran out are dropped; those with a
-- lease but no subscriber keep their place for `grace` ms only (a live
-- waiter whose connection dropped resubscribes within it; a killed one
-- never does). Looks at 100 waiters at most.
-- Writes nothing itself, so that a caller can look before its first write:
-- returns a function that drops and shortens what was found, or nil and the
-- reply for a key of another type (the queue, or a lease to be shortened:
-- other leases are only asked their PTTL, which any type answers, and a
-- lease without a TTL is not ours to delete). A waiter that got the wake-up
-- ends the walk, so no PUBLISH reached anybody when nil is returned.
local function wake_first_subscribed(lock, queue, grace, from)
  local dead, shorten = {}, {}
  for i = from or 0, (from or 0) + 99 do
    local w, bad = read(redis.pcall('LINDEX', queue, i), queue)
    if bad then
      return nil, {-1, bad, queue}
    end
    if not w then
      break
    end
    local lease_key = lock .. ':waiter:' .. w
    local left = redis.call('PTTL', lease_key)
    if left > 0 then
      if publish(lock .. ':wake:' .. w, '1') > 0 then
        break
      end
      if left > tonumber(grace) then
        local kind = alien(lease_key, 'hash', 'string')
        if kind then
          return nil, {-1, kind, lease_key}
        end
        shorten[#shorten + 1] = lease_key
      end
    else
      dead[#dead + 1] = w
    end
  end
  return function()
    for _, key in ipairs(shorten) do
      redis.call('PEXPIRE', key, grace)
    end
    for _, w in ipairs(dead) do
      redis.call('LREM', queue, 1, w)
    end
  end
end

-- The rights of the least-privilege ACL rule (`godislock acl-rule` prints
-- them from here): the commands godislock sends itself (eval, evalsha,
-- subscribe, scan, ping; on a Redis Cluster also ssubscribe, asking and
-- cluster shards or slots) and every command a script calls (on a cluster
-- spublish and pubsub shardnumsub instead of publish and pubsub numsub);
-- and those of the read-only rule (`--read-only`: status without --force).
-- One rule serves a single server and a cluster alike.
local k_rights = 'eval evalsha subscribe scan ping del exists get hget ' ..
    'hmget hset lindex llen lpop lpos lrem pexpire pttl publish ' ..
    'pubsub|numsub rename rpush set time type zadd zcount zrange zrem ' ..
    'zremrangebyscore zscore ssubscribe spublish pubsub|shardnumsub ' ..
    'asking cluster|shards cluster|slots'
local k_read_rights = 'eval evalsha scan exists get hmget llen pttl time ' ..
    'type zrange'

-- How to ask redis.acl_check_cmd about each right: the arguments of a
-- real call, K standing for the lock key and C for a channel of the lock
-- (PUBSUB NUMSUB and SHARDNUMSUB are not checked against channel rules).
-- Every argument is given: Redis 7.0 reads past the end of a call with
-- fewer than its keys need (EVAL or EVALSHA alone crash the server).
local k_right_args = {
  eval = {'return 1', '1', 'K'}, evalsha = {string.rep('0', 40), '1', 'K'},
  subscribe = {'C'}, scan = {'0'}, ping = {}, time = {},
  del = {'K'}, exists = {'K'}, get = {'K'}, llen = {'K'}, lpop = {'K'},
  pttl = {'K'}, type = {'K'}, hget = {'K', 'f'}, hmget = {'K', 'f'},
  hset = {'K', 'f', 'v'}, lindex = {'K', '0'}, lpos = {'K', 'v'},
  lrem = {'K', '0', 'v'}, pexpire = {'K', '1'}, publish = {'C', '1'},
  ['pubsub|numsub'] = {'numsub', 'x'}, rename = {'K', 'K'},
  rpush = {'K', 'v'}, set = {'K', 'v'}, zadd = {'K', '1', 'm'},
  zcount = {'K', '0', '1'}, zrange = {'K', '0', '1'}, zrem = {'K', 'm'},
  zremrangebyscore = {'K', '0', '1'}, zscore = {'K', 'm'},
  ssubscribe = {'C'}, spublish = {'C', '1'},
  ['pubsub|shardnumsub'] = {'shardnumsub', 'x'}, asking = {},
  ['cluster|shards'] = {'shards'}, ['cluster|slots'] = {'slots'},
}

-- Redis checks each command a script calls against the user's ACL when it
-- is called, so a right missing half-way would leave a step half done.
-- Where the server can tell in advance (redis.acl_check_cmd, Redis 7),
-- each script first checks every right of its rule, on the lock's own key
-- and channel, and a user who lacks any gets one NOPERM error naming them
-- all, with nothing written. When every right on the key (or channel)
-- fails, the key (channel) pattern is what is missing, and that is named
-- instead. About 30 checks: some 25 microseconds of server time.
local function lacking_rights(rights, key, channel)
  if not redis.acl_check_cmd then
    return nil
  end
  local lacking = {}
  local on_key, key_ok, on_channel, channel_ok = {}, false, {}, false
  for right in string.gmatch(rights, '%S+') do
    local args, uses_key, uses_channel = {}, false, false
    for i, a in ipairs(k_right_args[right]) do
      if a == 'K' then
        args[i], uses_key = key, true
      elseif a == 'C' then
        args[i], uses_channel = channel or key, true
      else
        args[i] = a
      end
    end
    local cmd = string.gsub(right, '|.*', '')
    if redis.acl_check_cmd(cmd, unpack(args)) then
      key_ok = key_ok or uses_key
      channel_ok = channel_ok or uses_channel
    else
      lacking[#lacking + 1] = right
      if uses_key then
        on_key[#on_key + 1] = right
      end
      if uses_channel then
        on_channel[#on_channel + 1] = right
      end
    end
  end
  if #lacking == 0 then
    return nil
  end
  local named, skip = {}, {}
  if not key_ok and #on_key > 0 then
    named[#named + 1] = 'access to the key ' .. key
    for _, r in ipairs(on_key) do
      skip[r] = true
    end
  end
  if channel and not channel_ok and #on_channel > 0 then
    named[#named + 1] = 'access to the channel ' .. channel
    for _, r in ipairs(on_channel) do
      skip[r] = true
    end
  end
  for _, r in ipairs(lacking) do
    if not skip[r] then
      named[#named + 1] = '+' .. r
    end
  end
  return redis.error_reply('NOPERM the ACL user lacks ' ..
      table.concat(named, ', ') .. ' (see godislock acl-rule)')
end
