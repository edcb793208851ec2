--[[
@script schedule
@version 5
@memory grows
@wait
@repeats timers
@summary Create a timer: an event that becomes ready at a due time judged
by the Redis clock (create_timer). The scheduler promotes due timers, each
to the back of its priority level (record field p).
@key timers
@key data
@key meta
@key idem
@key idem_at
@key config
@key counters
@key results
@arg max_payload config(max_payload) largest envelope accepted, in bytes
@arg id id the timer's event id
@arg payload envelope msgpack envelope bytes
@arg key key idempotency key, '' for none
@arg delay_ms ms? a delay from now, or '' when at_ms is given
@arg at_ms ms? an absolute due time in ms since the epoch, compared with the Redis
clock, or '' when delay_ms is given (exactly one of the two)
@arg priority whole(0..9) the priority level it fires into (0..9, 0 the default and lowest)
@return tuple(id:str,created:bool,due_ms:int) the id, 1 if created or 0 if the
idempotency key matched, the due time
@error INVALID_ARGUMENT
@error PAYLOAD_TOO_LARGE
@error DUPLICATE_ID the id exists with another payload, or belongs to a completed
event whose result is still kept (the same id and envelope again is answered
as an idempotent repeat, flag 0)
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include idem
--@include record
--@include fresh

local p = load_policy()
local now = now_ms(p)
argc(7)
local max_payload = int_arg(1, 'max_payload', 1)
local id, env, key = ARGV[2], ARGV[3], ARGV[4]
local delay = opt_int_arg(5, 'delay_ms', 0)
local at = opt_int_arg(6, 'at_ms', 0)
local level = int_arg(7, 'priority', 0, 9)
if id == '' then
  fail(E.INVALID_ARGUMENT, 'event id must not be empty')
end
if #env > max_payload then
  fail(E.PAYLOAD_TOO_LARGE, 'envelope of ' .. id .. ' is ' .. #env .. ' bytes, over the limit of ' .. max_payload)
end
if (delay == nil) == (at == nil) then
  fail(E.INVALID_ARGUMENT, 'give exactly one of delay_ms and at_ms')
end
local due = at or now + delay
-- A due time past 2^53 would reach ZADD as an inexact float.
if due > 9007199254740991 then
  fail(E.INVALID_ARGUMENT, 'due time ' .. fmt(due) .. ' ms is beyond 2^53 - 1')
end
local known = key ~= '' and idem_lookup(key, now)
if known then
  local score = redis.call('ZSCORE', K.timers, known)
  return {known, 0, score and tonumber(score) or -1}
end
-- Every live event has its payload in data (one enqueued ready has no
-- record, fresh.lua), so data answers whether the id is taken.
local old = redis.call('HGET', K.data, id)
if old and data_env(old) == env then
  -- The same timer sent again (a client retrying after a lost reply).
  local score = redis.call('ZSCORE', K.timers, id)
  return {id, 0, score and tonumber(score) or -1}
end
if old or meta_exists(id) or redis.call('HEXISTS', K.results, id) == 1 then
  fail(E.DUPLICATE_ID, 'event ' .. id .. ' already exists')
end

stamp_schema(p)
redis.call('HSET', K.data, id, env)
local m = meta_new('t', now)
meta_ext_set(m, 'p', level)
meta_put(id, m)
redis.call('ZADD', K.timers, due, id)
if key ~= '' then
  idem_store(key, id, now, p.idem_ttl_ms)
end
count('timers', 1)
prune(K.idem_at, K.idem, now, 2)
return {id, 1, due}
