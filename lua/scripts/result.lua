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
local s, a, reason = string.match(raw, '^(%a)|(%d+)|%d+|%d+|(.*)$')
if s == 'd' then
  return {'dead', reason, tonumber(a)}
end
return {'pending', s or '?', tonumber(a) or 0}
