--[[
@script result
@version 1
@summary Where an event stands, for the producer waiting on feedback:
completed (with its result), dead-lettered (with the reason), still
pending (with its status), or unknown.
@key meta
@key results
@arg id event id
@return array: 'done', result envelope ('' when completed without one) |
'dead', reason, attempt | 'pending', status letter, attempt | 'unknown'
@error INVALID_ARGUMENT
@error CORRUPT_STATE the event's bookkeeping record is unreadable
]]
--@include base

argc(1)
local id = ARGV[1]
local res = redis.call('HGET', K.results, id)
if res then
  return {'done', res}
end
local raw = redis.call('HGET', K.meta, id)
if not raw then
  return {'unknown'}
end
local s, a, reason = string.match(raw, '^([rltwxd])|(%d+)|%d+|%d+|(.*)$')
if not s then
  fail(E.CORRUPT_STATE, 'record of ' .. id .. ' is unreadable')
elseif s == 'd' then
  return {'dead', reason, tonumber(a)}
end
return {'pending', s, tonumber(a)}
