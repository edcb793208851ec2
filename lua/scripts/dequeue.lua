--[[
@script dequeue
@version 1
@summary Lease up to count ready events. Each delivery increments the
event's attempt and issues a fresh fencing token from the service's seq
counter; the lease ends at now + lease_ms unless extended. An id whose
record is missing or unreadable is moved to the dead letters, not lost.
@key ready
@key data
@key meta
@key leases
@key dead
@key seq
@key clock
@key config
@key counters
@arg count most events to lease, 1..1000
@arg lease_ms lease length in ms; 0 takes the service's lease_ms
@return array: deadline_ms, then per event: id, token, attempt, envelope
@error INVALID_ARGUMENT
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include record
--@include deadletter

argc(2)
local p = load_policy()
local now = now_ms()
local n = int_arg(1, 'count', 1, 1000)
local lease = int_arg(2, 'lease_ms', 0, 43200000)
if lease == 0 then
  lease = p.lease_ms
end
local deadline = now + lease
local out = {deadline}
-- INCRBY below fails on a seq Redis does not take as an integer (leading
-- zeros too); refuse before the pop, or the popped ids would be lost with the
-- error. Tokens must also stay exact as Lua doubles (below 2^53) to fence.
local seq = redis.call('GET', K.seq)
if seq and not (string.match(seq, '^0$') or (string.match(seq, '^[1-9]%d*$') and
    tonumber(seq) <= 9007199254740991 - 1000)) then
  fail(E.CORRUPT_STATE, 'fencing counter ' .. K.seq .. ' is not a whole number below 2^53')
end
-- Every read that can fail has happened above; from the pop on, each id
-- ends up leased or dead-lettered, never dropped.
local ids = redis.call('RPOP', K.ready, n)
if not ids then
  return out
end
local zargs, margs, leased = {}, {}, {}
-- One HMGET per hash and one INCRBY for the batch instead of three calls
-- per event. Pass 1 decides who is leased, so that the tokens are exactly
-- those of one INCR per leased event (seq untouched if none is).
local raws = redis.call('HMGET', K.meta, unpack(ids))
local envs = redis.call('HMGET', K.data, unpack(ids))
local metas, k = {}, 0
for i, id in ipairs(ids) do
  local m = meta_parse(raws[i])
  metas[i] = m
  if m and m.s == 'r' and envs[i] and not leased[id] then
    leased[id] = i
    k = k + 1
  end
end
local token = k > 0 and redis.call('INCRBY', K.seq, k) - k or 0
for i, id in ipairs(ids) do
  local m = metas[i]
  if leased[id] == i then
    token = token + 1
    m.attempt, m.s, m.token = m.attempt + 1, 'l', token
    push(zargs, deadline, id)
    push(margs, id, meta_str(m))
    push(out, id, token, m.attempt, envs[i])
  elseif leased[id] then
    -- A stray second copy in this batch: the record is written after the
    -- loop, so it still reads 'r' here and must not be leased twice.
    count('orphaned', 1)
  else
    -- Rare paths: read the record again, as an earlier copy of the same id
    -- in this batch may just have dead-lettered it.
    m = meta_get(id)
    if m and m.s == 'r' then
      to_dead(id, m, 'payload missing', now)
    elseif m then
      -- A stray copy of an id that is tracked elsewhere (leased, timer...).
      count('orphaned', 1)
    else
      quarantine(id, m, now)
    end
  end
end
if #zargs > 0 then
  redis.call('ZADD', K.leases, unpack(zargs))
  redis.call('HSET', K.meta, unpack(margs))
  count('delivered', #zargs / 2)
end
return out
