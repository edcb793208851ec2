--[[
@script result
@version 6
@memory none
@summary Where an event stands, for the producer waiting on feedback:
completed (with its result), dead-lettered (with the reason), still
pending (with its status), or unknown.
@key data
@key meta
@key results
@arg id id event id
@return union(done:raw_result:bytes;dead:detail:str,attempt:int;pending:detail:status,attempt:int,snoozes:int,progress:int,priority:int;unknown)
'done', result envelope ('' when completed without one) | 'dead', reason,
attempt | 'pending', status letter, attempt, snoozes taken, progress (0..100),
priority level (0..9) | 'unknown'
@error INVALID_ARGUMENT
@error CORRUPT_STATE the event's bookkeeping record is unreadable
]]
--@include base
--@include record
--@include fresh

argc(1)
local id = ARGV[1]
local res = redis.call('HGET', K.results, id)
if res then
  return {'done', res}
end
-- An event never delivered has no record (fresh.lua): ready, nothing charged.
local m = meta_or_fresh(id)
if m == nil then
  return {'unknown'}
elseif m == false then
  fail(E.CORRUPT_STATE, 'record of ' .. id .. ' is unreadable')
elseif m.s == 'd' then
  return {'dead', m.reason, m.attempt}
end
return {'pending', m.s, m.attempt, meta_ext(m, 's'), meta_ext(m, 'q'), meta_ext(m, 'p')}
