-- record: an event's bookkeeping record in the meta hash,
-- 'status|attempt|token|created_ms|returns|reason'. Status letters: r ready,
-- v reserved (leased by a worker that has not started it: no attempt charged
-- yet), l leased (started: the attempt is charged), t timer, w waiting out a
-- retry backoff, x lease expired, d dead. attempt counts charged deliveries;
-- token is the fencing token of the current lease (0: none); returns counts
-- the times a reserved lease ran out unstarted (a worker died holding it).
-- Every script reads and writes records through this file only.

-- A record parsed from its stored text: a table, nil when absent (HGET and
-- HMGET give false), false when unreadable.
local function meta_parse(raw)
  if not raw then
    return nil
  end
  local s, a, tok, c, ret, reason =
    string.match(raw, '^([rvltwxd])|(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
  if not s then
    return false
  end
  return {s = s, attempt = tonumber(a), token = tonumber(tok), created = tonumber(c),
    returns = tonumber(ret), reason = reason}
end

-- The record of id, as meta_parse gives it.
local function meta_get(id)
  return meta_parse(redis.call('HGET', K.meta, id))
end

local function meta_str(m)
  return m.s .. '|' .. fmt(m.attempt) .. '|' .. fmt(m.token) .. '|' .. fmt(m.created) ..
    '|' .. fmt(m.returns or 0) .. '|' .. (m.reason or '')
end

-- A fresh record: status s, created now, nothing charged.
local function meta_new(s, now)
  return meta_str({s = s, attempt = 0, token = 0, created = now, returns = 0})
end

local function meta_put(id, m)
  redis.call('HSET', K.meta, id, meta_str(m))
end

-- Whether m is the live lease of token: reserved or started.
local function holds(m, token)
  return (m.s == 'l' or m.s == 'v') and m.token == token
end
