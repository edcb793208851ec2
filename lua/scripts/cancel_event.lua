--[[
@script cancel_event
@version 3
@memory level
@wait
@summary Cancel a queued event by id (cancel): one that is ready, waiting
out a retry backoff, or a pending timer is removed with its payload and
record, as if it had never been enqueued. A leased or reserved event is not
touched (its holder may be running it: complete or fail decide), nor a dead
letter (dead purge removes those), a completed event or a recurring timer
(recurring_remove). The reply says which it was. O(1) whatever the queue's
length: a ready event of level 0 leaves its id in the ready list as a dead
copy, counted in void (id -> its dead copies, '' -> their total), which
dequeue skips and consumes when it reaches it and stats and forget subtract;
a ready event of a level above 0 is a ZREM of the prio zset, a waiting one
of retry, a timer of timers. The id may be enqueued again at once: its dead
copies are older than any new copy, so they are the ones skipped. Leaving a
dead copy stamps the service with this schema (older clients refuse it).
A cancelled member of a group finishes its group as failed
(enqueue_group), naming it.
@key ready
@key prio
@key timers
@key retry
@key data
@key meta
@key results
@key results_at
@key config
@key counters
@key void unguarded: HMGET before any write, and only for a ready event at level 0
@arg id id the event's id
@return tuple(cancelled:bool,state:str) 1 and the state it was cancelled from
(ready, waiting, timer), or 0 and why not: leased, reserved, dead, recurring,
expired or unknown
@error INVALID_ARGUMENT
@error CORRUPT_STATE
@error SCHEMA_MISMATCH
]]
--@include base
--@include counters
--@include record
--@include clock
--@include policy
--@include group_end
--@include ready

argc(1)
local id = ARGV[1]
local m = meta_get(id)
if m == false then
  fail(E.CORRUPT_STATE, 'record of ' .. id .. ' is unreadable')
end
local names = {r = 'ready', w = 'waiting', t = 'timer', l = 'leased', v = 'reserved',
  d = 'dead', x = 'expired', c = 'recurring'}
if m == nil then
  if redis.call('HEXISTS', K.data, id) == 0 then
    return {0, 'unknown'}
  end
  -- A payload without a record: an event enqueued ready and never delivered
  -- (record.lua writes no record until the first lease).
  m = {s = 'r'}
end
-- The policy before any write: its schema stamp (refused if this client does
-- not read it; stamped when a dead copy is left) and, for a group member, the
-- clock (the policy's test clock).
local p = load_policy()
local now = meta_ext(m, 'g') > 0 and now_ms(p) or nil
local removed = 0
if m.s == 'r' and level_of(m) > 0 then
  removed = redis.call('ZREM', K.prio, id)
  drop_marker()
elseif m.s == 'r' then
  -- Level 0: the id stays in the ready list as a dead copy (void counts it),
  -- which dequeue skips when it pops it: no scan of the list. Read first, so
  -- that a void of a foreign type, or a count someone overwrote, writes nothing.
  local v = on('HMGET', K.void, id, '')
  local mine, total = v[1] or '0', v[2] or '0'
  if not (string.match(mine, '^%d+$') and string.match(total, '^%d+$')) then
    fail(E.CORRUPT_STATE, 'a count of dead copies in ' .. K.void .. ' is not a whole number')
  end
  -- A dead copy is what only this schema reads: an older client must refuse
  -- the service rather than take it for a stray id (keys.json schema_reads).
  stamp_schema(p)
  redis.call('HSET', K.void, id, fmt(tonumber(mine) + 1), '', fmt(tonumber(total) + 1))
  removed = 1
elseif m.s == 'w' then
  removed = redis.call('ZREM', K.retry, id)
elseif m.s == 't' then
  removed = redis.call('ZREM', K.timers, id)
end
if removed == 0 then
  return {0, names[m.s] or m.s}
end
redis.call('HDEL', K.data, id)
meta_del({id})
if now then
  group_member_failed(m, id, now)
end
count('cancelled', 1)
return {1, names[m.s]}
