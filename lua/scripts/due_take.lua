--[[
@script due_take
@version 1
@memory level
@summary A scheduler's look at the due-time index (the global zset due):
claim the services due by the Redis clock, and those whose claim by
another scheduler is older than claim_ms (it died mid-step), by setting
their score to 2^50 + now; the claim makes every later ZADD LT of a client
visible to due_settle, and keeps the other schedulers off the service
meanwhile. Also says when to look again. Only changes the scores of
members that exist, so it keeps memory level (it runs on a full Redis).
@key due
@arg limit whole(1..1000) most services to claim
@arg claim_ms whole(1..3600000) how long a claim holds off the other schedulers
@return records(now:int,next_due:int,next_claim:int|service:str) the Redis
clock (ms); the earliest unclaimed due time after the claims (-1 if none);
when the earliest remaining claim goes stale (-1 if none); then the claimed
services
@error INVALID_ARGUMENT
]]
--@include base

argc(2)
local limit = int_arg(1, 'limit', 1, LIMITS.batch)
local claim_ms = int_arg(2, 'claim_ms', 1, 3600000)
-- 2^50 ms is the year 37648: no due time reaches it, and 2^50 + now stays
-- exact in a double.
local CLAIM = 1125899906842624
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local taken = redis.call('ZRANGEBYSCORE', K.due, '-inf', now, 'LIMIT', 0, limit)
if #taken < limit then
  local stale = redis.call('ZRANGEBYSCORE', K.due, CLAIM, fmt(CLAIM + now - claim_ms),
    'LIMIT', 0, limit - #taken)
  for _, s in ipairs(stale) do
    taken[#taken + 1] = s
  end
end
if #taken > 0 then
  local args = {}
  for _, s in ipairs(taken) do
    push(args, fmt(CLAIM + now), s)
  end
  redis.call('ZADD', K.due, 'XX', unpack(args))
end

local next_due, next_claim = -1, -1
local first = redis.call('ZRANGEBYSCORE', K.due, '-inf', '(' .. fmt(CLAIM), 'WITHSCORES',
  'LIMIT', 0, 1)
if first[2] then
  next_due = tonumber(first[2])
end
local claim = redis.call('ZRANGEBYSCORE', K.due, CLAIM, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if claim[2] then
  next_claim = tonumber(claim[2]) - CLAIM + claim_ms
end
local out = {now, next_due, next_claim}
for _, s in ipairs(taken) do
  out[#out + 1] = s
end
return out
