--[[
@script due_settle
@version 1
@memory level
@summary A scheduler's answer to its due_take claim, once it promoted the
services: each service's entry in the due-time index becomes the next due
time its promote returned, or goes when that is -1, but only while the
entry still holds this claim (or none). An entry a client lowered
meanwhile (ZADD LT after a script that ran after the promote) is only
lowered further, never raised or removed: that is what keeps a new earlier
timer from being lost. The entries it may add back are the ones due_take
claimed, so memory stays level.
@key due
@arg claim whole(1125899906842624..max) the claim score due_take set (2^50 + its now)
@arg count count(items) how many services follow
@arg items list(service:text(128),next_due:ms?) each service and the next due time
its promote returned ('' when nothing is due: the entry goes), below 2^50
@return value(int) how many of the services remain in the index
@error INVALID_ARGUMENT
]]
--@include base

local claim = int_arg(1, 'claim', 1125899906842624)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 2 * n)
for i = 1, n do
  local s = ARGV[1 + 2 * i]
  if s == '' or #s > 128 then
    fail(E.INVALID_ARGUMENT, 'service names are 1..128 bytes')
  end
  if ARGV[2 + 2 * i] ~= '' then
    int_arg(2 + 2 * i, 'next_due', 0, 1125899906842623)
  end
end
local kept = 0
for i = 1, n do
  local s, due = ARGV[1 + 2 * i], tonumber(ARGV[2 + 2 * i]) or -1
  local cur = redis.call('ZSCORE', K.due, s)
  if not cur or tonumber(cur) == claim then
    if due < 0 then
      if cur then
        redis.call('ZREM', K.due, s)
      end
    else
      redis.call('ZADD', K.due, fmt(due), s)
      kept = kept + 1
    end
  else
    if due >= 0 then
      redis.call('ZADD', K.due, 'LT', fmt(due), s)
    end
    kept = kept + 1
  end
end
return kept
