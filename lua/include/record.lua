-- record: an event's bookkeeping record in the meta hash,
-- 'status|attempt|token|created_ms|reason'. Status letters: r ready,
-- l leased, t timer, w waiting out a retry backoff, x lease expired,
-- d dead. token is the fencing token of the current lease (0: none).

-- A record parsed from its stored text: a table, nil when absent (HGET and
-- HMGET give false), false when unreadable.
local function meta_parse(raw)
  if not raw then
    return nil
  end
  local s, a, tok, c, reason = string.match(raw, '^([rltwxd])|(%d+)|(%d+)|(%d+)|(.*)$')
  if not s then
    return false
  end
  return {s = s, attempt = tonumber(a), token = tonumber(tok), created = tonumber(c),
    reason = reason}
end

-- The record of id, as meta_parse gives it.
local function meta_get(id)
  return meta_parse(redis.call('HGET', K.meta, id))
end

local function meta_str(m)
  return m.s .. '|' .. fmt(m.attempt) .. '|' .. fmt(m.token) .. '|' .. fmt(m.created) ..
    '|' .. (m.reason or '')
end

local function meta_put(id, m)
  redis.call('HSET', K.meta, id, meta_str(m))
end


