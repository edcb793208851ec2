--[[
@script complete
@version 3
@memory checked
@wait
@summary Acknowledge leased events (complete and complete_many). Each
item is checked on its own: its token must be the event's current lease
token, so a consumer whose lease expired and was reclaimed is refused
(fencing). A lease past its deadline that no scheduler has reclaimed yet
is still honoured: no one else has the event. The result, if any, is kept
for result_ttl_ms so the producer can read it. An id named twice in one
call is acknowledged once; the repeat reports UNKNOWN_EVENT, as a later
call would. On a full Redis (maxmemory, noeviction) a completion still
lands when it does not grow memory: without a result, or with a result no
larger than the payload it frees; a larger result is refused for that item
with REDIS_FULL and the event stays leased (the worker sends it again).
@key data
@key meta
@key leases
@key results
@key results_at
@key config
@key counters
@arg max_payload config(max_payload) largest result envelope accepted, in bytes
@arg count count(items) number of items
@arg items list(id:id,token:token,result:result) per item: id, token, result
envelope ('' for no result)
@return items(ok) per item 'OK', or STALE_LEASE, UNKNOWN_EVENT, CORRUPT_STATE,
PAYLOAD_TOO_LARGE or REDIS_FULL (that item is left as it was: keep the lease and resend)
@error INVALID_ARGUMENT
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
@error STALE_LEASE reported per item
@error UNKNOWN_EVENT reported per item
@error PAYLOAD_TOO_LARGE reported per item
@error REDIS_FULL reported per item
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include record
--@include prune

local p = load_policy()
local now = now_ms(p)
local max_payload = int_arg(1, 'max_payload', 1)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 3 * n)
local out, done, all = {}, {}, {}
local stale = 0
for i = 1, n do
  all[i] = ARGV[2 + 3 * (i - 1) + 1]
end
-- One HMGET for every record, one HSET and one ZADD for all results,
-- instead of three calls per item.
local metas = meta_get_many(all)
local rargs, zargs = {}, {}
local until_ms = now + p.result_ttl_ms
for i = 1, n do
  local b = 2 + 3 * (i - 1)
  local id, token, res = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3]
  local m = metas[i]
  -- The records are deleted after the loop, so a repeat must be caught here.
  if m == nil or done[id] then
    out[i] = E.UNKNOWN_EVENT
  elseif m == false then
    out[i] = E.CORRUPT_STATE
  elseif not holds(m, token) then
    out[i] = E.STALE_LEASE
    stale = stale + 1
  elseif #res > max_payload then
    out[i] = E.PAYLOAD_TOO_LARGE
  else
    out[i] = 'OK'
    done[#done + 1] = id
    done[id] = i
    push(rargs, id, res)
  end
end
local keep = p.result_ttl_ms > 0 and #done > 0
if keep then
  -- The probe: this HSET is the script's first write, and a full Redis
  -- refuses only a first write that may grow memory (this script runs
  -- without allow-oom for that reason). Refused: decide per item below.
  local r = redis.pcall('HSET', K.results, unpack(rargs))
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'OOM', 1, true) then
      error(r)
    end
    -- Full: keep the items whose result fits in the payload they free.
    local sizes = redis.call('HMGET', K.data, unpack(done))
    local kept, fit = {}, {}
    for j, id in ipairs(done) do
      local res = rargs[2 * j]
      if #res <= #(sizes[j] or '') then
        push(kept, id)
        push(fit, id, res)
      else
        out[done[id]] = E.REDIS_FULL
      end
    end
    done, rargs = kept, fit
    keep = #done > 0
    if keep then
      -- Deletes first: once the script has written, Redis lets it finish.
      redis.call('ZREM', K.leases, unpack(done))
      redis.call('HSET', K.results, unpack(rargs))
    end
  end
end
for _, id in ipairs(done) do
  push(zargs, until_ms, id)
end
if #done > 0 then
  if keep then
    redis.call('ZADD', K.results_at, unpack(zargs))
  end
  redis.call('ZREM', K.leases, unpack(done))
  redis.call('HDEL', K.data, unpack(done))
  meta_del(done)
  count('completed', #done)
  -- Amortised retention: retire at most two stale results per completion.
  prune(K.results_at, K.results, now, 2 * #done)
end
if stale > 0 then
  -- Stale acks refused (a lease lost, then reclaimed): counted for operators.
  -- Not through count(): when nothing else was written this is the script's
  -- first write, which a full Redis refuses, and the refusals must still be
  -- reported per item, so an OOM here is dropped instead of raised.
  local r = redis.pcall('HINCRBY', K.counters, 'stale_acks', stale)
  if type(r) == 'table' and r.err and not string.find(r.err, 'OOM', 1, true) then
    redis.pcall('HSET', K.counters, 'stale_acks', stale)
  end
end
return out
