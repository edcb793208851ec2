--[[
@script dead_list
@version 4
@memory none
@summary Page through a service's dead letters, oldest first.
@key data
@key meta
@key dead
@arg offset whole(0..max) position of the first entry
@arg count whole(1..batch) most entries
@return records(total:int|id:str,died_ms:int,attempt:int,reason:str,raw:bytes)
total dead, then per entry: id, died_ms, attempt, reason, envelope ('' if the
payload is missing)
@error INVALID_ARGUMENT
]]
--@include base
--@include record
--@include fresh

argc(2)
local offset = int_arg(1, 'offset', 0)
local n = int_arg(2, 'count', 1, LIMITS.batch)
local out = {redis.call('ZCARD', K.dead)}
local page = redis.call('ZRANGE', K.dead, offset, offset + n - 1, 'WITHSCORES')
for i = 1, #page, 2 do
  local id = page[i]
  local m = meta_get(id)
  out[#out + 1] = id
  out[#out + 1] = tonumber(page[i + 1])
  out[#out + 1] = m and m.attempt or 0
  out[#out + 1] = m and m.reason or ('unreadable record: ' .. (meta_raw(id) or ''))
  -- An event dead-lettered after a lease may still carry its fresh prefix.
  out[#out + 1] = data_env(redis.call('HGET', K.data, id) or '')
end
return out
