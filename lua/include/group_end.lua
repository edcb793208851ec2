-- group_end: a group finishing (every member completed, or the first one
-- died) and groups retired with their members' results; the part of groups
-- that writes results_at (lua/include/group.lua has the layout).
--@include record
--@include group

-- Group n (header g) is finished now: its retention starts.
local function group_finish(n, g, now)
  g.finished = now
  redis.call('ZADD', K.results_at, now + g.ttl, group_field(n))
end

-- Event id (record m) will never complete: dead-lettered or cancelled. Its
-- group, if it still exists and had no failure yet, is finished as failed,
-- naming it (the first failure).
local function group_member_failed(m, id, now)
  local n = meta_ext(m, 'g')
  if n == 0 then
    return
  end
  local g = group_get(n)
  if not g or g.failed ~= '' then
    return
  end
  g.failed = id
  if g.finished == 0 then
    group_finish(n, g, now)
  end
  group_put(n, g)
end

-- Retire up to n results (groups count as one each) whose retention ended.
local function results_prune(now, n)
  local old = redis.call('ZRANGEBYSCORE', K.results_at, '-inf', now, 'LIMIT', 0, n)
  if #old > 0 then
    redis.call('ZREM', K.results_at, unpack(old))
    results_drop(old)
  end
  return #old
end
