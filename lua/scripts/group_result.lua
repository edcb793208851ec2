--[[
@script group_result
@version 1
@memory none
@summary The results of a group's members, in the order they were given
(group_result), once every member completed; nothing yet while the group
runs; GROUP_FAILED naming the first member that was dead-lettered or
cancelled (with its dead letter's reason when it is still there), even
while other members still run.
@key meta
@key results
@arg group id the group's id ('g<n>', as enqueue_group returned it)
@return records(finished:bool|id:str,raw_result:bytes) 1 and each member's id and
result envelope ('' when completed without one), or 0 and no members while it runs
@error INVALID_ARGUMENT the id is not of the form g<n>
@error UNKNOWN_GROUP no such group: never created, forgotten, or retired
@error GROUP_FAILED a member was dead-lettered or cancelled (the first is named)
@error CORRUPT_STATE the group's record is unreadable, or a member's result is missing
]]
--@include base
--@include record
--@include group_call

argc(1)
local gn = group_arg(1)
local g = group_need(gn)
if g.failed ~= '' then
  local m = meta_get_many({g.failed})[1]
  local why = (m and m.s == 'd') and ('dead-lettered: ' .. m.reason) or 'cancelled or no longer kept'
  fail(E.GROUP_FAILED, 'group ' .. ARGV[1] .. ' failed: member ' .. g.failed .. ' ' .. why)
end
if g.done < g.total then
  return {0}
end
local ids = group_ids(gn)
local res = redis.call('HMGET', K.results, unpack(ids))
local out = {1}
for i, id in ipairs(ids) do
  if not res[i] then
    fail(E.CORRUPT_STATE, 'group ' .. ARGV[1] .. ': the result of member ' .. id .. ' is missing')
  end
  out[2 * i], out[2 * i + 1] = id, res[i]
end
return out
