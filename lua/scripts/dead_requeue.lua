--[[
@script dead_requeue
@version 3
@memory level
@wait
@summary Give dead letters a new life: move them back to the ready queue
with their attempt count reset. Either the oldest count entries, or the
ids named. Bounded; the CLI loops with progress for large requeues.
@key ready
@key data
@key meta
@key dead
@key counters
@arg count whole(1..batch) how many of the oldest, when no ids are given
@arg ids rest(id) the dead letters to requeue (none: the oldest count)
@return tuple(requeued:int,remaining:int) events requeued, dead letters remaining
@error INVALID_ARGUMENT
]]
--@include base
--@include counters
--@include dead_select
--@include record

local ids = select_dead()
local moved = {}
for _, id in ipairs(ids) do
  local m = meta_get(id)
  redis.call('ZREM', K.dead, id)
  if redis.call('HEXISTS', K.data, id) == 1 then
    meta_put(id, meta_new('r', m and m.created or 0))
    moved[#moved + 1] = id
  else
    -- Nothing left to deliver: the record goes with the entry.
    meta_del({id})
  end
end
if #moved > 0 then
  redis.call('LPUSH', K.ready, unpack(moved))
  count('requeued', #moved)
end
return {#moved, redis.call('ZCARD', K.dead)}
