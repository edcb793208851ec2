--[[
@script promote
@version 6
@memory level
@summary The retry scheduler's step for one service: move due timers and
due retries to the ready queue, each at the back of its priority level (a
due recurring timer fires one event and moves on to its next tick, see
recurring_put), and reclaim expired leases (their tokens die here, so a late
complete is refused). A started lease goes onto the
expired list for the distributor, which charges it; a reserved lease (its
worker never started it) goes straight back to the front of the ready
queue (of its level) uncharged, its returns count raised. Also retires stale
results (a finished group with its members' results) and idempotency keys. At
most limit items of each kind per call.
@key ready
@key prio
@key data
@key meta
@key leases
@key timers
@key retry
@key expired
@key dead
@key results
@key results_at
@key idem
@key idem_at
@key config
@key counters
@arg limit whole(1..1000) most items of each kind to move (the ids are unpacked
into one command, and Lua's unpack fails beyond about 8000)
@return tuple(timers:int,retries:int,expired:int,more:bool,next_due_ms:int,returned:int)
timers promoted, retries promoted, leases reclaimed (started and reserved), more
(1 if a limit was reached), next due ms of the earliest remaining timer, retry or
lease deadline (-1 if none), reserved leases returned uncharged
@error INVALID_ARGUMENT
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include group_end
--@include record
--@include deadletter
--@include prune
--@include ready
--@include recurring

argc(1)
local p = load_policy()
local now = now_ms(p)
local limit = int_arg(1, 'limit', 1, LIMITS.batch)
local more = 0

-- Timer lateness (now - due, ms, Redis clock) as a histogram in the counters
-- hash, read through stats for the metrics (homing_timer_lateness_seconds):
-- late_le_<ms> per bucket (not cumulative: the exporter adds them up),
-- late_inf beyond the last, late_sum_ms and late_count. In Redis, not in a
-- reply, so that any number of schedulers add to one histogram per service.
local LATE_BUCKETS = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}
local function count_lateness(late)
  local per, sum = {}, 0
  for _, ms in ipairs(late) do
    sum = sum + ms
    local name = 'late_inf'
    for _, b in ipairs(LATE_BUCKETS) do
      if ms <= b then
        name = 'late_le_' .. b
        break
      end
    end
    per[name] = (per[name] or 0) + 1
  end
  for _, b in ipairs(LATE_BUCKETS) do  -- in a fixed order: the effects are replicated
    count('late_le_' .. b, per['late_le_' .. b] or 0)
  end
  count('late_inf', per['late_inf'] or 0)
  count('late_sum_ms', sum)
  count('late_count', #late)
end

-- Move due members of zset to the ready queue, as status r. With late, the
-- lateness of each one that became ready (a timer or a recurring timer's
-- occurrence) is added to it.
local function promote_due(zset, counter, late)
  local pairs_ = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  local ids, due = {}, {}
  for j = 1, #pairs_, 2 do
    ids[#ids + 1], due[#due + 1] = pairs_[j], pairs_[j + 1]
  end
  if #ids == 0 then
    return 0
  end
  if #ids == limit then
    more = 1
  end
  redis.call('ZREM', zset, unpack(ids))
  local moved, levels, fired = {}, {}, 0
  for i, id in ipairs(ids) do
    local m = meta_get(id)
    if m and m.s == 'c' then
      local oid = fire_recurring(id, m, tonumber(due[i]), now)
      if oid then
        moved[#moved + 1] = oid
        levels[#moved] = level_of(m)  -- the schedule's level, as its occurrence's record
        fired = fired + 1
        if late then
          late[#late + 1] = now - tonumber(due[i])
        end
      end
    elseif m then
      m.s, m.token = 'r', 0
      meta_put(id, m)
      moved[#moved + 1] = id
      levels[#moved] = level_of(m)
      if late then
        late[#late + 1] = now - tonumber(due[i])  -- a quarantined one never became ready
      end
    else
      quarantine(id, m, now)
    end
  end
  count('recurring_fired', fired)
  if #moved > 0 then
    to_ready(moved, levels)
    count(counter, #moved)
  end
  return #ids
end

local lateness = {}
local timers = promote_due(K.timers, 'timers_fired', lateness)
if #lateness > 0 then
  count_lateness(lateness)
end
local retries = promote_due(K.retry, 'retries_ready')

local expired = redis.call('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0, limit)
if #expired == limit then
  more = 1
end
local unstarted, unstarted_levels = {}, {}
if #expired > 0 then
  redis.call('ZREM', K.leases, unpack(expired))
  local charged = 0
  for _, id in ipairs(expired) do
    local m = meta_get(id)
    if m and m.s == 'v' then
      -- Never started: not the event's fault, so no attempt and no backoff.
      m.s, m.token, m.returns = 'r', 0, m.returns + 1
      m.reason = 'returned unstarted after its lease ran out (' .. m.returns .. ')'
      meta_put(id, m)
      unstarted[#unstarted + 1] = id
      unstarted_levels[#unstarted] = level_of(m)
    else
      if m then
        m.s, m.token, m.reason = 'x', 0, 'lease expired on attempt ' .. m.attempt
        meta_put(id, m)
      end
      -- An unreadable record still goes to the distributor, which dead-letters it.
      redis.call('LPUSH', K.expired, id)
      charged = charged + 1
    end
  end
  if #unstarted > 0 then
    -- They were next before, they go next again, the first due first.
    to_front(unstarted, unstarted_levels)
  end
  count('expired', charged)
  count('returned', #unstarted)
end

-- A group retired takes its members' results with it (lua/include/group.lua).
results_prune(now, limit)
prune(K.idem_at, K.idem, now, limit)

local next_due = -1
for _, z in ipairs({K.timers, K.retry, K.leases}) do
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if first[2] then
    local t = tonumber(first[2])
    if next_due < 0 or t < next_due then
      next_due = t
    end
  end
end
return {timers, retries, #expired, more, next_due, #unstarted}
