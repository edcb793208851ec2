--[[
@script enqueue
@version 6
@memory grows
@wait
@repeats enqueued
@summary Add a batch of events to a service's ready queue (enqueue and
enqueue_many), each at its priority level (0..9, 9 first; 0 the ready list,
1..9 the prio zset, lua/include/ready.lua). Idempotency keys seen within
idem_ttl_ms return the first event's id and add nothing. Validates the whole
batch before writing.
@key ready unguarded: LPUSH is the first write, or LLEN before any write when a priority is given (refused: nothing written)
@key prio unguarded: touched only for a priority above 0, first by ZREVRANGEBYSCORE before any write
@key data unguarded: HMGET before any write
@key meta unguarded: HLEN (admit_write_levels) before any write, and only with a priority; an event at level 0 gets no record (fresh.lua)
@key idem unguarded: HGET before any write, and only written when so read
@key idem_at unguarded: ZSCORE before any write, and only written when so read
@key config unguarded: HMGET (the policy) before any write
@key counters unguarded: written only by count(), under pcall
@key results unguarded: HMGET before any write
@arg max_payload config(max_payload) largest envelope accepted, in bytes
@arg count count(items) number of events in the batch
@arg items list(id:id,payload:envelope,key:key,priority:whole(0..9)) per event: id,
envelope (msgpack bytes), idempotency key ('' for none), priority level (0..9, 0
the default and lowest)
@return records(|id:str,added:bool) per event its id and 1 if added, or 0 if an
idempotency key matched an earlier event (whose id is returned)
@error INVALID_ARGUMENT a count, size, id or priority is malformed
@error PAYLOAD_TOO_LARGE an envelope is over max_payload
@error DUPLICATE_ID an id already exists in the service with another payload,
twice in the batch, or belongs to a completed event whose result is still kept
(a result belongs to one event). The same id with the same envelope, while
the event is not yet completed, is answered as an idempotent repeat (flag 0).
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include idem
--@include record
--@include admit
--@include ready
--@include fresh

-- The hot path of a web request. A single enqueue without an idempotency key
-- costs seven commands: the policy HMGET (schema, test clock and
-- idem_ttl_ms, the one policy field it uses), TIME (the creation time),
-- one HMGET each of data and results (the duplicate checks of the whole
-- batch; a batch reads results only if the hash exists), and the writes:
-- LPUSH, HSET of the payloads, HINCRBY. An event at level 0 gets no record
-- until its first lease: its payload carries its creation time (fresh.lua).
-- No key is type-checked up front: each is read before the first write, or
-- is that write (meta, written only with a priority, by admit_write_levels,
-- whose HLEN comes first). The schema is stamped only on a new service;
-- idempotency keys are read, stored and pruned only by calls that carry keys
-- (each retires up to two stale keys per key stored, so stale keys never
-- outgrow the rate they are added).
-- The only policy field an enqueue uses.
local p = load_policy_one('idem_ttl_ms', DEFAULTS.idem_ttl_ms)
local now = now_ms(p)
local max_payload = int_arg(1, 'max_payload', 1)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 4 * n)

-- Pass 1: validate and decide, write nothing. Arrays are filled by index,
-- not push(): its varargs were a visible part of a bulk enqueue's time.
local pre = fresh_prefix(now)
local out, ids, data_args, keys, levels = {}, {}, {}, {}, {}
local in_batch, key_in_batch = {}, {}
local all = {}
for i = 1, n do
  all[i] = ARGV[4 * i - 1]
end
-- Every live event has its payload in data, so data answers both whether
-- the id is taken and whether a repeat carries the same envelope.
local known = on('HMGET', K.data, unpack(all))
-- A completed event whose result is still kept owns its id too. For a batch,
-- EXISTS first: by default completions keep nothing, and an HMGET of a
-- missing hash still hands back one nil per id.
local kept = {}
if n == 1 or on('EXISTS', K.results) == 1 then
  kept = on('HMGET', K.results, unpack(all))
end
local nkeys, no, ni, nprio = 0, 0, 0, 0
-- One event of the batch, at ARGV[b..b+3], in full: a level above 0, a key,
-- a known id, a bad id or payload (the fast loop below takes the rest).
local function admit_one(i, b)
  local id, env, key = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local level = 0
  if ARGV[b + 3] ~= '0' then
    level = int_arg(b + 3, 'priority', 0, 9)
  end
  if id == '' or #env > max_payload then
    admit_check(id, env, max_payload)
  end
  local first = nil
  if key ~= '' then
    first = key_in_batch[key] or idem_lookup(key, now)
  end
  if not first and known[i] and data_env(known[i]) == env then
    -- The same event sent again (a client retrying after a lost reply): it is
    -- already here, so answer as for an idempotency key instead of refusing.
    first = id
  end
  if first then
    out[no + 1], out[no + 2] = first, 0
    return
  end
  if in_batch[id] or known[i] or kept[i] then
    fail(E.DUPLICATE_ID, 'event ' .. id .. ' already exists')
  end
  in_batch[id] = true
  if key ~= '' then
    key_in_batch[key] = id
    nkeys = nkeys + 1
  end
  ni = ni + 1
  ids[ni] = id
  -- keys and levels hold only what is set (nil: none, level 0).
  if key ~= '' then
    keys[ni] = key
  end
  if level > 0 then
    levels[ni] = level
    nprio = nprio + 1
  end
  -- Every value carries the fresh prefix; an event with a priority gets a
  -- record as well (admit_write_levels), which is then what counts.
  data_args[2 * ni - 1], data_args[2 * ni] = id, pre .. env
  out[no + 1], out[no + 2] = id, 1
end
-- The common event in one test and no call: level '0', no key, a new id
-- (not in data, not kept, not earlier in the batch), a non-empty id and a
-- payload that fits. Per event, the general path's branches and lookups were
-- half of a bulk enqueue's Lua time (bench/README.md).
local argv = ARGV
for i = 1, n do
  local b = 4 * i - 1
  local id, env = argv[b], argv[b + 1]
  if argv[b + 3] == '0' and argv[b + 2] == '' and not known[i] and not kept[i]
      and not in_batch[id] and id ~= '' and #env <= max_payload then
    in_batch[id] = true
    ni = ni + 1
    ids[ni] = id
    data_args[2 * ni - 1], data_args[2 * ni] = id, pre .. env
    out[no + 1], out[no + 2] = id, 1
  else
    admit_one(i, b)
  end
  no = no + 2
end

-- Pass 2: write (admit_write: LPUSH first; with priorities admit_write_levels,
-- whose reads also come before its first write).
if ni > 0 then
  if nprio == 0 then
    admit_write(p, ids, ni, data_args)
  else
    admit_write_levels(p, ids, ni, data_args, now, levels)
  end
  if nkeys > 0 then
    for i = 1, ni do
      if keys[i] then
        idem_store(keys[i], ids[i], now, p.idem_ttl_ms)
      end
    end
  end
end
if nkeys > 0 then
  prune(K.idem_at, K.idem, now, 2 * nkeys)
end
return out
