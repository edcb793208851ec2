--[[
@script complete
@version 5
@memory checked
@wait
@summary Acknowledge leased events (complete and complete_many). Each
item is checked on its own: its token must be the event's current lease
token, so a consumer whose lease expired and was reclaimed is refused
(fencing). A lease past its deadline that no scheduler has reclaimed yet
is still honoured: no one else has the event. The result, if any, is kept
for result_ttl_ms so the producer can read it; a completion without one
keeps nothing unless the service's done_ttl_ms asks for it (then an empty
result for done_ttl_ms, so status and result answer done). An id named twice in one
call is acknowledged once; the repeat reports UNKNOWN_EVENT, as a later
call would. On a full Redis (maxmemory, noeviction) a completion still
lands when it does not grow memory: without a result, or with a result no
larger than the payload it frees; a larger result is refused for that item
with REDIS_FULL and the event stays leased (the worker sends it again). A
member of a group that still exists (enqueue_group) keeps its result, even
an empty one, with the group instead (no results_at entry of its own: it
goes when the group goes), and counts as done in the group's record; the
last member to complete finishes the group.
@key data
@key meta unguarded: HMGET before any write
@key leases
@key results unguarded: HGET of a member's group (on) before any write; else the HSET probe is the first write (refused: nothing written)
@key results_at unguarded: ZRANGEBYSCORE (the prune) before the probe, when results are kept
@key config unguarded: HMGET (the policy) before any write
@key counters unguarded: written only by count(), under pcall
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
--@include group_end
--@include lease

local p = load_policy()
local max_payload = int_arg(1, 'max_payload', 1)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 3 * n)
local out, done, all = {}, {}, {}
local stale = 0
for i = 1, n do
  all[i] = ARGV[3 * i]
end
-- One HMGET for every record, one HSET and one ZADD for what is kept,
-- instead of three calls per item.
local raws = meta_raw_many(all)
local rargs, kept = {}, {}
-- Group number -> its header (false: no such group), read before any write.
local groups = {}
for i = 1, n do
  local b = 3 * i
  local id, token, res = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  -- Only the lease fields of the record: no table per event.
  local s, mtok, ext = meta_lease_of(raws[i])
  -- The records are deleted after the loop, so a repeat must be caught here.
  if s == nil and not done[id] and fresh_exists(id) then
    -- No record but a payload: ready, never delivered (fresh.lua).
    out[i] = E.STALE_LEASE
    stale = stale + 1
  elseif s == nil or done[id] then
    out[i] = E.UNKNOWN_EVENT
  elseif s == false then
    out[i] = E.CORRUPT_STATE
  elseif not leased_text(s, mtok, token) then
    out[i] = E.STALE_LEASE
    stale = stale + 1
  elseif #res > max_payload then
    out[i] = E.PAYLOAD_TOO_LARGE
  else
    out[i] = 'OK'
    done[#done + 1] = id
    done[id] = i
    -- What is kept: a result for result_ttl_ms; no result only when the
    -- service asked for it (done_ttl_ms), so that by default a completion
    -- without a result leaves nothing behind.
    local ttl = res ~= '' and p.result_ttl_ms or p.done_ttl_ms
    local gn = ext_field(ext, 'g')
    if gn > 0 then
      if groups[gn] == nil then
        groups[gn] = group_get(gn) or false
      end
      if groups[gn] then
        ttl = -gn  -- kept with its group: no retention of its own
      end
    end
    if ttl ~= 0 then
      push(kept, id)
      push(rargs, id, res)
      kept[id] = ttl
    end
  end
end
local now = nil
local retired = {}
if #kept > 0 then
  now = now_ms(p)
  -- The prune's read, before any write (results_at is not type-checked up
  -- front); its deletes follow the writes below.
  retired = on('ZRANGEBYSCORE', K.results_at, '-inf', now, 'LIMIT', 0, 2 * #kept)
  -- The probe: this HSET is the script's first write, and a full Redis
  -- refuses only a first write that may grow memory (this script runs
  -- without allow-oom for that reason). Refused: decide per item below.
  local r = redis.pcall('HSET', K.results, unpack(rargs))
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'OOM', 1, true) then
      on('HLEN', K.results)  -- a foreign type: refused by name, nothing written
      error(r)
    end
    -- Full: keep the items whose result fits in the payload they free, and
    -- complete the others only if they keep nothing.
    local sizes = redis.call('HMGET', K.data, unpack(kept))
    local keep2, fit, drop = {}, {}, {}
    for j, id in ipairs(kept) do
      local res = rargs[2 * j]
      if #res <= #(sizes[j] or '') then
        push(keep2, id)
        push(fit, id, res)
        keep2[id] = kept[id]
      else
        out[done[id]] = E.REDIS_FULL
        drop[id] = true
      end
    end
    local done2 = {}
    for _, id in ipairs(done) do
      if not drop[id] then
        push(done2, id)
        done2[id] = done[id]
      end
    end
    done, kept, rargs = done2, keep2, fit
    if #done > 0 then
      -- Deletes first: once the script has written, Redis lets it finish.
      redis.call('ZREM', K.leases, unpack(done))
      if #kept > 0 then
        redis.call('HSET', K.results, unpack(rargs))
      end
    end
  end
end
if #done > 0 then
  if #kept > 0 then
    local zargs = {}
    local counted, seen = {}, {}
    for _, id in ipairs(kept) do
      local ttl = kept[id]
      if ttl > 0 then
        push(zargs, now + ttl, id)
      else
        local gn, g = -ttl, groups[-ttl]
        g.done = g.done + 1
        if not seen[gn] then
          seen[gn] = true
          push(counted, gn)
        end
      end
    end
    if #zargs > 0 then
      redis.call('ZADD', K.results_at, unpack(zargs))
    end
    for _, gn in ipairs(counted) do
      local g = groups[gn]
      if g.finished == 0 and g.done >= g.total then
        group_finish(gn, g, now)
      end
      group_put(gn, g)
    end
  end
  redis.call('ZREM', K.leases, unpack(done))
  redis.call('HDEL', K.data, unpack(done))
  meta_del(done)
  count('completed', #done)
  -- Amortised retention, paid by the calls that keep something: at most two
  -- stale entries retired per entry kept.
  if #retired > 0 then
    redis.call('ZREM', K.results_at, unpack(retired))
    results_drop(retired)
  end
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
