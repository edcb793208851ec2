-- group_call: the argument and the lookup of the calls that name a group
-- (group_status, group_result, group_forget).
--@include group

-- ARGV[i] as a group number: 'g<n>'.
local function group_arg(i)
  local n = string.match(ARGV[i], '^g(%d+)$')
  if not n or #n > 15 then
    fail(E.INVALID_ARGUMENT, "a group id is 'g' and a number, got " .. ARGV[i])
  end
  return tonumber(n)
end

-- The header of group n, or the call refused: UNKNOWN_GROUP, CORRUPT_STATE.
local function group_need(n)
  local g = group_get(n)
  if g == nil then
    fail(E.UNKNOWN_GROUP, 'no group ' .. group_field(n):sub(2) .. ' in this service')
  elseif g == false then
    fail(E.CORRUPT_STATE, 'record of group ' .. group_field(n):sub(2) .. ' is unreadable')
  end
  return g
end
