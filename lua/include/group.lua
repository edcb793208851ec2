-- group: events enqueued together whose results are waited for and removed
-- together (group_enqueue). No key of its own: a group lives in the results
-- hash as two fields whose names no event id can take (ids start with a
-- letter, digit or '_'):
--   '#g<n>'      'total|done|ttl_ms|finished_ms|failed_id' (finished_ms 0
--                while running; failed_id '' unless a member died)
--   '#g<n>:ids'  the member ids, space-separated, in the order given
-- and each member's meta record carries field g = n (record_fields). While a
-- group exists its members' results (even empty ones) are kept in results
-- without an entry of their own in results_at: only the group's '#g<n>' is
-- scored there, from the moment it finished (finished_ms + ttl_ms), and
-- retiring it removes the members' results with it. A running group is not
-- retired (its members are bounded: at most LIMITS.batch).

-- Four whole numbers and the failed id (not a meta record: record.lua owns those).
local WHOLE = '(%d+)|'
local GROUP_PATTERN = '^' .. WHOLE .. WHOLE .. WHOLE .. WHOLE .. '(.*)$'

-- The results field of group n.
local function group_field(n)
  return '#g' .. fmt(n)
end

-- The group header parsed: a table, nil when absent, false when unreadable.
local function group_parse(raw)
  if not raw then
    return nil
  end
  local t, d, ttl, fin, failed = string.match(raw, GROUP_PATTERN)
  if not t then
    return false
  end
  return {total = tonumber(t), done = tonumber(d), ttl = tonumber(ttl),
    finished = tonumber(fin), failed = failed}
end

local function group_str(g)
  return string.format('%d|%d|%d|%d|%s', g.total, g.done, g.ttl, g.finished, g.failed)
end

-- The header of group n, read through on(): some scripts read results here
-- first, before any write.
local function group_get(n)
  return group_parse(on('HGET', K.results, group_field(n)))
end

local function group_put(n, g)
  redis.call('HSET', K.results, group_field(n), group_str(g))
end

-- The member ids of group n, in order.
local function group_ids(n)
  local ids = {}
  local raw = redis.call('HGET', K.results, group_field(n) .. ':ids')
  if raw then
    for id in string.gmatch(raw, '%S+') do
      ids[#ids + 1] = id
    end
  end
  return ids
end

-- HDEL fields of the results hash, in chunks (unpack fails beyond ~8000).
local function results_hdel(fields)
  for i = 1, #fields, 1000 do
    redis.call('HDEL', K.results, unpack(fields, i, math.min(i + 999, #fields)))
  end
end

-- Delete results fields whose retention ended; a group's header takes its
-- member list and its members' results with it. Returns the fields deleted.
local function results_drop(fields)
  local del = {}
  for _, f in ipairs(fields) do
    del[#del + 1] = f
    if string.sub(f, 1, 2) == '#g' then
      local raw = redis.call('HGET', K.results, f .. ':ids')
      del[#del + 1] = f .. ':ids'
      if raw then
        for id in string.gmatch(raw, '%S+') do
          del[#del + 1] = id
        end
      end
    end
  end
  results_hdel(del)
  return del
end
