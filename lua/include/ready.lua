-- ready: making events ready, by priority level. Every script that makes an
-- event ready goes through to_ready or to_front, so no path forgets a level.
-- Level 0 (the default, record field p absent) uses the ready list exactly as
-- before: LPUSH at the head, RPOP at the tail. Levels 1..9 (9 highest) wait in
-- the prio zset, which dequeue empties first: level L's scores lie in
-- [(9 - L) * 2^44, (10 - L) * 2^44), so ZPOPMIN takes the highest level
-- first, and within a level the smallest score, the one queued first. An
-- empty level starts at the middle of its range, the back of a level is its
-- largest score + 1 and the front its smallest - 1 (a release), so no counter
-- is kept and the scores stay exact (below 10 * 2^44 < 2^53).
--@include record
--@include marker

local PRIO_SPAN = 17592186044416  -- 2^44 scores per level
local PRIO_MID = 8796093022208    -- 2^43: where an empty level starts

-- The priority level (0..9) of record m (nil or false: 0).
local function level_of(m)
  return m and meta_ext(m, 'p') or 0
end

-- The first score for k ids of level l at the back (or the front) of it.
-- Through on(): in enqueue this read comes before any write.
--@cold
local function prio_start(l, k, front)
  local lo, hi = (9 - l) * PRIO_SPAN, (10 - l) * PRIO_SPAN
  local edge
  if front then
    edge = on('ZRANGEBYSCORE', K.prio, lo, '(' .. fmt(hi), 'WITHSCORES', 'LIMIT', 0, 1)
  else
    edge = on('ZREVRANGEBYSCORE', K.prio, '(' .. fmt(hi), lo, 'WITHSCORES', 'LIMIT', 0, 1)
  end
  if not edge[2] then
    return lo + PRIO_MID
  end
  return front and tonumber(edge[2]) - k or tonumber(edge[2]) + 1
end

-- Make ids ready, levels[i] the level of ids[i]: at the back of their level
-- (front false: FIFO, as an enqueue) or at its front (front true: ids[1]
-- is delivered next of its level, then ids[2]..., as a release). Every read
-- comes before the first write, so a key of a foreign type writes nothing.
--@cold
local function ready_push(ids, levels, front)
  local plain, groups, any = {}, {}, false
  for i, id in ipairs(ids) do
    local l = levels[i] or 0
    if l == 0 then
      plain[#plain + 1] = id
    else
      groups[l] = groups[l] or {}
      push(groups[l], id)
      any = true
    end
  end
  local len, starts = nil, {}
  if any then
    len = on('LLEN', K.ready)
    for l = 9, 1, -1 do
      if groups[l] then
        starts[l] = prio_start(l, #groups[l], front)
      end
    end
  end
  if #plain > 0 then
    if front then
      -- Ids go behind the marker's place: take it off (the ids wake waiters).
      if redis.call('LINDEX', K.ready, -1) == READY_MARKER then
        redis.call('RPOP', K.ready)
      end
      local rev = {}
      for j = #plain, 1, -1 do
        rev[#rev + 1] = plain[j]
      end
      on('RPUSH', K.ready, unpack(rev))
    else
      on('LPUSH', K.ready, unpack(plain))
    end
  end
  if any then
    for l = 9, 1, -1 do
      local g = groups[l]
      if g then
        local z = {}
        for j, id in ipairs(g) do
          z[2 * j - 1], z[2 * j] = starts[l] + j - 1, id
        end
        redis.call('ZADD', K.prio, unpack(z))
      end
    end
    if len == 0 and #plain == 0 then
      redis.call('LPUSH', K.ready, READY_MARKER)
    end
  end
end

-- Make ids ready at the back of their levels (an enqueue, a due timer or retry).
--@cold
local function to_ready(ids, levels)
  ready_push(ids, levels, false)
end

-- Put ids back at the front of their levels, so that ids[1] is delivered
-- next of its level, then ids[2]... (a release, a lease returned unstarted).
local function to_front(ids, levels)
  ready_push(ids, levels, true)
end
