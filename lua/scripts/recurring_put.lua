--[[
@script recurring_put
@version 3
@memory grows
@wait
@summary Register a recurring timer (every_ms or a cron expression) under a
name: the same name registered twice is one schedule (an unchanged spec and
payload keep their next tick; a changed one starts again from now). It is a
timer whose record has status c: promote fires each tick as a new event
<name>.<tick_ms> in the ready queue and sets the next tick, atomically, so
several daemons fire each tick once; never before its time by the Redis clock.
catch_up 1 (once): after downtime one event stands for the ticks missed; 0
(skip): a tick is fired only while the next one is not yet due, so missed
ticks fire nothing. Each occurrence fires into the schedule's priority level
(its record's field p, as an event's): a changed level alone is kept without
restarting the schedule (its next tick stays).
@key timers
@key data
@key meta
@key results
@key recurring
@key config
@key counters
@arg max_payload config(max_payload) largest envelope accepted, in bytes
@arg name id the schedule's name, at most LIMITS.recurring_name_bytes bytes
@arg payload envelope the envelope every occurrence carries
@arg every_ms whole(1..31536000000)? a tick every every_ms ms from now, or '' with cron
@arg cron text(100) a five-field cron expression in UTC, or '' with every_ms
@arg catch_up bool 1: after downtime fire once for the missed ticks; 0: skip them
@arg priority whole(0..9) the priority level each occurrence fires into (0..9, 0 the default and lowest)
@return tuple(name:str,created:bool,next_ms:int) the name, 1 if new (0: it existed),
the next tick (ms, Redis clock)
@error INVALID_ARGUMENT
@error PAYLOAD_TOO_LARGE
@error DUPLICATE_ID the name is taken by an event that is not a recurring timer
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include record
--@include cron

argc(7)
local p = load_policy()
local now = now_ms(p)
local max_payload = int_arg(1, 'max_payload', 1)
local name, env, expr = ARGV[2], ARGV[3], ARGV[5]
local every = opt_int_arg(4, 'every_ms', 1, 31536000000)
local catch_up = bool_arg(6, 'catch_up') and '1' or '0'
local level = int_arg(7, 'priority', 0, 9)
if name == '' or #name > LIMITS.recurring_name_bytes then
  fail(E.INVALID_ARGUMENT, 'a schedule name is 1..' .. LIMITS.recurring_name_bytes ..
    ' bytes (its events are <name>.<tick_ms>)')
end
if #env > max_payload then
  fail(E.PAYLOAD_TOO_LARGE, 'envelope of ' .. name .. ' is ' .. #env ..
    ' bytes, over the limit of ' .. max_payload)
end
if (every == nil) == (expr == '') then
  fail(E.INVALID_ARGUMENT, 'give exactly one of every_ms and cron')
end
if #expr > 100 then
  fail(E.INVALID_ARGUMENT, 'a cron expression is at most 100 bytes')
end
local spec = spec_text(every, expr, catch_up)
local m = meta_get(name)
if m == false then
  fail(E.CORRUPT_STATE, 'record of ' .. name .. ' is unreadable')
end
if m and m.s ~= 'c' then
  fail(E.DUPLICATE_ID, name .. ' is an event of this service, not a recurring timer')
end
if m == nil and redis.call('HEXISTS', K.data, name) == 1 then
  -- No record but a payload: an event enqueued ready, never delivered (fresh.lua).
  fail(E.DUPLICATE_ID, name .. ' is an event of this service, not a recurring timer')
end
if m == nil and redis.call('HEXISTS', K.results, name) == 1 then
  fail(E.DUPLICATE_ID, name .. ' is a completed event whose result is still kept')
end
if m and m.reason == spec and redis.call('HGET', K.data, name) == env then
  -- The same schedule again: it keeps its next tick (and takes the level given).
  if meta_ext(m, 'p') ~= level then
    meta_ext_set(m, 'p', level)
    meta_put(name, m)
  end
  local score = redis.call('ZSCORE', K.timers, name)
  return {name, 0, score and tonumber(score) or -1}
end
-- Checked by parsing before anything is written; a spec that never fires is refused.
local nxt = spec_next(spec, now, now)
if nxt == nil then
  fail(E.INVALID_ARGUMENT, 'cron expression ' .. expr .. ' never fires')
end
stamp_schema()
local r = m or meta_new('c', now)
r.s, r.created, r.reason = 'c', now, spec
meta_ext_set(r, 'p', level)
meta_put(name, r)
redis.call('HSET', K.data, name, env)
redis.call('ZADD', K.timers, nxt, name)
redis.call('SADD', K.recurring, name)
if not m then
  count('recurring', 1)
end
return {name, m and 0 or 1, nxt}
