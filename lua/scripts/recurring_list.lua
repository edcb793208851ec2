--[[
@script recurring_list
@version 2
@memory none
@summary A page of a service's recurring timers, by name: their spec, the
next tick, how many ticks fired an event and how many were skipped, and
the priority level its occurrences fire into.
@key timers
@key meta
@key recurring
@arg offset whole(0..max) position of the first schedule, in name order
@arg count whole(1..batch) most schedules
@return records(total:int|name:str,spec:str,next_ms:int,fired:int,skipped:int,priority:int)
the number of schedules, then per schedule: name, spec ('every <ms> <catch_up>'
or 'cron <catch_up> <expression>'), next tick ms (-1 if none), ticks fired,
ticks skipped, priority level (0..9; last, so a reader of the five fields before
it is unaffected)
@error INVALID_ARGUMENT
@error CORRUPT_STATE
]]
--@include base
--@include record

argc(2)
local offset = int_arg(1, 'offset', 0)
local n = int_arg(2, 'count', 1, LIMITS.batch)
-- SMEMBERS is bounded by how many schedules a service has; names are sorted
-- here so that pages are stable.
local names = redis.call('SMEMBERS', K.recurring)
table.sort(names)
local out = {#names}
for i = offset + 1, math.min(#names, offset + n) do
  local name = names[i]
  local m = meta_get(name)
  if m and m.s == 'c' then
    local score = redis.call('ZSCORE', K.timers, name)
    push(out, name, m.reason, score and tonumber(score) or -1, m.attempt, m.returns,
      meta_ext(m, 'p'))
  else
    push(out, name, '', -1, 0, 0, 0)
  end
end
return out
