--[[
@script group_status
@version 1
@memory none
@summary Where a group stands (group_status): how many members it has, how
many completed, the first member that was dead-lettered or cancelled ('' if
none) and when it finished (0 while it runs). A group finishes when every
member completed or at its first failure.
@key results
@arg group id the group's id ('g<n>', as enqueue_group returned it)
@return tuple(total:int,done:int,failed:str,finished_ms:int) members, members
completed, the first failed member ('' if none), when the group finished (ms; 0: running)
@error INVALID_ARGUMENT the id is not of the form g<n>
@error UNKNOWN_GROUP no such group: never created, forgotten, or retired
@error CORRUPT_STATE the group's record is unreadable
]]
--@include base
--@include group_call

argc(1)
local gn = group_arg(1)
local g = group_need(gn)
return {g.total, g.done, g.failed, g.finished}
