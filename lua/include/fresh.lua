-- fresh: an event enqueued ready at level 0 and never delivered has no
-- record in meta. Its record would say only 'ready, nothing charged,
-- created then', so its data value carries the creation time instead:
-- '#' .. created_ms .. '#' .. envelope. Why: a hash field is the costliest
-- write of an enqueue (a bulk enqueue's record HSET was ~2 of its ~4 us
-- per event, bench/README.md), and a queued event is ~100 B smaller. The
-- first lease writes the record (dequeue); the prefix stays, and every
-- script that hands out or compares an envelope reads it through data_env.
-- An envelope is a msgpack map (docs/protocol.md, 4): its first byte is
-- never '#', so a prefixed value and a bare envelope cannot be mistaken.
--@include base
--@include record

-- The prefix of every envelope an enqueue writes at clock now (once per batch).
local function fresh_prefix(now)
  return '#' .. fmt(now) .. '#'
end

-- A data value as its envelope and, when it carries the fresh prefix, the
-- creation time's text (nil otherwise, and for an absent value).
local function data_env(raw)
  if raw and string.byte(raw, 1) == 35 then
    -- A plain find and two subs: a third cheaper than one pattern match with
    -- captures, once per event a dequeue hands out.
    local at = string.find(raw, '#', 2, true)
    if at and at > 2 then
      local c = string.sub(raw, 2, at - 1)
      if not string.find(c, '%D') then
        return string.sub(raw, at + 1), c
      end
    end
  end
  return raw, nil
end

-- The record an id without one stands for when its data value carries the
-- fresh prefix (created, its text): ready, nothing charged. nil otherwise.
local function fresh_record(created)
  if created then
    return {s = 'r', attempt = 0, token = 0, created = tonumber(created), returns = 0,
      ext = '', reason = ''}
  end
  return nil
end

-- The record of id as meta_get gives it, or, when it has none, the one its
-- fresh data value stands for (fresh_record): for the scripts that report or
-- cancel an event in any state.
local function meta_or_fresh(id)
  local m = meta_get(id)
  if m == nil then
    local _, created = data_env(redis.call('HGET', K.data, id) or nil)
    return fresh_record(created)
  end
  return m
end
