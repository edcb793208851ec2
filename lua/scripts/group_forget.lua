--[[
@script group_forget
@version 1
@memory level
@wait
@summary Remove a group and its members' results together (group_forget),
finished or not. Members still queued stay queued; each then completes
like an event outside any group (its result kept for result_ttl_ms).
@key results
@key results_at
@arg group id the group's id ('g<n>', as enqueue_group returned it)
@return value(int) how many member results were removed
@error INVALID_ARGUMENT the id is not of the form g<n>
@error UNKNOWN_GROUP no such group: never created, forgotten, or retired
@error CORRUPT_STATE the group's record is unreadable
]]
--@include base
--@include group_call

argc(1)
local gn = group_arg(1)
group_need(gn)
local ids = group_ids(gn)
local had = 0
if #ids > 0 then
  local res = redis.call('HMGET', K.results, unpack(ids))
  for i = 1, #ids do
    if res[i] then
      had = had + 1
    end
  end
end
redis.call('ZREM', K.results_at, group_field(gn))
results_drop({group_field(gn)})
return had
