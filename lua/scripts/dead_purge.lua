--[[
@script dead_purge
@version 3
@memory level
@summary Delete dead letters for good: the oldest count entries, or the
ids named. The only way an event leaves homing without completing.
@key data
@key meta
@key dead
@key counters
@arg mode 'oldest' (next argument: count 1..1000) or 'ids' (then the ids)
@arg count_or_ids see mode
@return array: events purged, dead letters remaining
@error INVALID_ARGUMENT
]]
--@include base
--@include counters
--@include dead_select
--@include record

local ids = select_dead()
if #ids > 0 then
  redis.call('ZREM', K.dead, unpack(ids))
  redis.call('HDEL', K.data, unpack(ids))
  meta_del(ids)
  count('purged', #ids)
end
return {#ids, redis.call('ZCARD', K.dead)}
