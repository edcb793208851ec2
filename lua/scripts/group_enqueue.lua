--[[
@script group_enqueue
@version 3
@memory grows
@wait
@repeats enqueued
@summary Enqueue a batch of events as one group (enqueue_group): each is an
ordinary ready event whose record also names the group (field g), and the
group, 'g<n>' from the service's counter 'groups', is kept in the results
hash: '#g<n>' holds 'total|done|ttl_ms|finished_ms|failed_id' and
'#g<n>:ids' the members in order. Its members' results are kept until the
group is forgotten (group_forget) or retired ttl_ms (the service's
result_ttl_ms when the group was enqueued) after it finished: every member
completed, or the first member dead-lettered or cancelled (see
lua/include/group.lua). Bounded: at most LIMITS.batch members. Every
member must be new: a group has no idempotency keys, and an id already
queued or whose result is kept is refused. Each member has its priority
level (0..9, as enqueue's: 0 the ready list, 1..9 the prio zset,
lua/include/ready.lua).
@key ready unguarded: LPUSH is the first write, or LLEN before any write when a priority is given (refused: nothing written)
@key prio unguarded: touched only for a priority above 0, first by ZREVRANGEBYSCORE before any write
@key data unguarded: HMGET before any write
@key meta unguarded: HLEN (admit_write, admit_write_levels) before any write
@key results unguarded: HMGET before any write
@key config unguarded: HMGET (the policy) before any write
@key counters unguarded: HGET (the last group number) before any write
@arg max_payload config(max_payload) largest envelope accepted, in bytes
@arg count count(items) number of members
@arg items list(id:id,payload:envelope,priority:whole(0..9)) per member: id, envelope
(msgpack bytes), priority level (0..9, 0 the default and lowest)
@return records(group:str|id:str) the group's id, then its members' ids in order
@error INVALID_ARGUMENT a count, size, id or priority is malformed
@error PAYLOAD_TOO_LARGE an envelope is over max_payload
@error DUPLICATE_ID an id is twice in the batch, already exists in the
service, or belongs to a completed event whose result is still kept
@error SCHEMA_MISMATCH
@error CORRUPT_STATE the counter 'groups' is not a whole number
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include record
--@include admit
--@include group
--@include ready

local p = load_policy()
local now = now_ms(p)
local max_payload = int_arg(1, 'max_payload', 1)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 3 * n)

local ids, data_args, seen, levels = {}, {}, {}, {}
for i = 1, n do
  ids[i] = ARGV[3 * i]
end
local known = on('HMGET', K.data, unpack(ids))
local kept = on('HMGET', K.results, unpack(ids))
for i = 1, n do
  local id, env = ids[i], ARGV[3 * i + 1]
  levels[i] = int_arg(3 * i + 2, 'priority', 0, 9)
  admit_check(id, env, max_payload)
  if seen[id] or known[i] or kept[i] then
    fail(E.DUPLICATE_ID, 'event ' .. id .. ' already exists (a group takes new events only)')
  end
  seen[id] = true
  data_args[2 * i - 1], data_args[2 * i] = id, env
end
local last = on('HGET', K.counters, 'groups')
local gn = tonumber(last or '0')
if not gn or gn ~= math.floor(gn) or gn < 0 then
  fail(E.CORRUPT_STATE, "counter 'groups' of " .. K.counters .. ' is not a whole number: ' .. tostring(last))
end
gn = gn + 1

-- Each record carries the group (field g) beside its level (field p): a
-- member is never fresh (fresh.lua), its record says which group it is in.
admit_write_levels(p, ids, n, data_args, now, levels, {g = gn})
redis.call('HSET', K.counters, 'groups', gn)
redis.call('HSET', K.results, group_field(gn) .. ':ids', table.concat(ids, ' '))
group_put(gn, {total = n, done = 0, ttl = p.result_ttl_ms, finished = 0, failed = ''})
local out = {'g' .. fmt(gn)}
for i = 1, n do
  out[i + 1] = ids[i]
end
return out
