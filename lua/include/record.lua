-- record: an event's bookkeeping record in the meta hash,
-- 'status|attempt|token|created_ms|returns[ext]|reason'. ext holds the
-- optional fields, each a lower-case letter and a whole number, written only
-- when not 0 so that an ordinary event pays nothing for them (keys.json's
-- record_fields names the letters: p priority, s snoozes, q progress, g
-- group). A record without ext (every record before them) reads as all 0. Status letters: r ready,
-- v reserved (leased by a worker that has not started it: no attempt charged
-- yet), l leased (started: the attempt is charged), t timer, w waiting out a
-- retry backoff, x lease expired, d dead. attempt counts charged deliveries;
-- token is the fencing token of the current lease (0: none); returns counts
-- the times a reserved lease ran out unstarted (a worker died holding it).
-- Every script reads, writes and deletes records through this file only (the
-- tests hold every other file to that: no K.meta outside it), so the format
-- and its parser exist once.

-- The stored form; the letters are keys.json's statuses (generated).
local RECORD_PATTERN = '^([' .. STATUS_LETTERS .. '])|(%d+)|(%d+)|(%d+)|(%d+)([%l%d]*)|(.*)$'

-- A record parsed from its stored text: a table, nil when absent (HGET and
-- HMGET give false), false when unreadable.
local function meta_parse(raw)
  if not raw then
    return nil
  end
  local s, a, tok, c, ret, ext, reason =
    string.match(raw, RECORD_PATTERN)
  if not s then
    return false
  end
  -- ext is kept as stored (decoded only by meta_ext), so the hot paths that
  -- never look at it pay one capture; '' when the event has none.
  return {s = s, attempt = tonumber(a), token = tonumber(tok), created = tonumber(c),
    returns = tonumber(ret), ext = ext, reason = reason}
end

-- Field f (one letter of keys.json's record_fields) of a record's ext text: 0 unless set.
local function ext_field(ext, f)
  if not ext or ext == '' then
    return 0
  end
  local v = string.match(ext, f .. '(%d+)')
  return v and tonumber(v) or 0
end

-- Field f of record m: 0 unless set.
local function meta_ext(m, f)
  return ext_field(m.ext, f)
end

-- What meta_lease_of matches: RECORD_PATTERN with only the lease fields
-- captured (the same records match: its '(.*)$' matches any rest).
local LEASE_PATTERN = '^([' .. STATUS_LETTERS .. '])|%d+|(%d+)|%d+|%d+([%l%d]*)|'

-- The lease fields of a stored record without building the record: status
-- letter, token (its text, for leased_text) and ext text; nil when absent,
-- false when unreadable, as meta_parse. Why: complete reads nothing else,
-- once per event, and the record's table, its three other numbers and the
-- token's tonumber were a third of its instructions per event
-- (bench/luacost.py --instructions).
local function meta_lease_of(raw)
  if not raw then
    return nil
  end
  local s, tok, ext = string.match(raw, LEASE_PATTERN)
  if not s then
    return false
  end
  return s, tok, ext
end

-- Set field f of record m to whole number v (0 removes it). The fields are
-- kept in letter order so that one record has one stored form.
--@cold
local function meta_ext_set(m, f, v)
  local fields = {}
  for k, x in string.gmatch(m.ext or '', '(%l)(%d+)') do
    if k ~= f then
      fields[#fields + 1] = {k, x}
    end
  end
  if v ~= 0 then
    fields[#fields + 1] = {f, fmt(v)}
  end
  table.sort(fields, function(a, b) return a[1] < b[1] end)
  local parts = {}
  for i, kv in ipairs(fields) do
    parts[i] = kv[1] .. kv[2]
  end
  m.ext = table.concat(parts)
end

-- The record of id, as meta_parse gives it.
local function meta_get(id)
  return meta_parse(redis.call('HGET', K.meta, id))
end

-- The records of ids in one HMGET (a batch reads once, not once per id): rs[i]
-- is the record of ids[i] as meta_parse gives it (nil: absent, false:
-- unreadable). Index it by position; # is undefined where records are absent.
local function meta_get_many(ids)
  -- Through on(): a script may leave meta to this read, its first touch.
  local raws = on('HMGET', K.meta, unpack(ids))
  local rs = {}
  for i = 1, #ids do
    rs[i] = meta_parse(raws[i])
  end
  return rs
end

-- The stored texts of the records of ids, in one HMGET (false where absent),
-- for meta_lease_of.
local function meta_raw_many(ids)
  -- Through on(): a script may leave meta to this read, its first touch.
  return on('HMGET', K.meta, unpack(ids))
end

-- The stored text of id's record as it is (nil when absent), for telling
-- what an unreadable record holds.
local function meta_raw(id)
  return redis.call('HGET', K.meta, id) or nil
end

-- Whether id has a record at all, readable or not.
local function meta_exists(id)
  return redis.call('HEXISTS', K.meta, id) == 1
end

-- A whole number's digits as fmt writes them; 0, the common value of
-- attempt, token and returns in a fresh record, without a call.
local function digits(x)
  if x == 0 then
    return '0'
  end
  return fmt(x)
end

-- The stored text of record m. Concatenation and one fmt per non-zero
-- number: a string.format of the five numbers cost ~8,000 instructions
-- (each %d is an sprintf), a fresh record's text ~3,500 this way
-- (bench/luacost.py --instructions).
local function meta_str(m)
  return m.s .. '|' .. digits(m.attempt) .. '|' .. digits(m.token) .. '|' .. fmt(m.created) ..
    '|' .. digits(m.returns or 0) .. (m.ext or '') .. '|' .. (m.reason or '')
end

-- The fields of a stored record as the texts it holds, for a script that
-- rewrites a record without reading it as numbers (dequeue, per event
-- leased): status, attempt, token, created_ms, returns, ext, reason; nil
-- when absent, false when unreadable, as meta_parse. canon is true when
-- attempt, created_ms and returns are as meta_str writes them (no leading
-- zero, at most 15 digits, so exact as Lua numbers): only then may
-- meta_join copy their texts in place of meta_str's digits and still write
-- the one stored form (the token, which a lease replaces, is not copied).
-- Why: the record's table, four tonumber and the numbers' formatting were
-- about half of dequeue's Lua time per event.
local function meta_texts(raw)
  if not raw then
    return nil
  end
  local s, a, tok, c, ret, ext, reason = string.match(raw, RECORD_PATTERN)
  if not s then
    return false
  end
  local canon = #a < 16 and #c < 16 and #ret < 16 and not string.find(raw, '|0%d')
  return s, a, tok, c, ret, ext, reason, canon
end

-- The stored text of a record from field texts (as meta_texts gives them,
-- or digits), in meta_str's layout.
local function meta_join(s, a, tok, c, ret, ext, reason)
  return s .. '|' .. a .. '|' .. tok .. '|' .. c .. '|' .. ret .. ext .. '|' .. reason
end

-- A fresh record: status s, created now, nothing charged.
local function meta_new(s, now)
  return {s = s, attempt = 0, token = 0, created = now, returns = 0}
end

local function meta_put(id, m)
  redis.call('HSET', K.meta, id, meta_str(m))
end

-- Write many stored texts in one HSET: pairs is id1, text1, id2, text2, ...
-- (texts of meta_str or meta_join).
local function meta_put_texts(pairs)
  redis.call('HSET', K.meta, unpack(pairs))
end

-- Write many records in one HSET: pairs is id1, record1, id2, record2, ...
--@cold
local function meta_put_many(pairs)
  local args = {}
  for i = 1, #pairs, 2 do
    args[i], args[i + 1] = pairs[i], meta_str(pairs[i + 1])
  end
  redis.call('HSET', K.meta, unpack(args))
end

-- Write the same record m for ids[1..n] in one HSET, formatted once (a
-- bulk enqueue: every new event's record is the same fresh one).
local function meta_put_same(ids, n, m)
  local rec, args = meta_str(m), {}
  for i = 1, n do
    args[2 * i - 1], args[2 * i] = ids[i], rec
  end
  redis.call('HSET', K.meta, unpack(args))
end

-- Refuse meta of a foreign type before any write (enqueue and
-- group_enqueue: one HLEN instead of the generated guard's TYPE).
local function meta_check()
  on('HLEN', K.meta)
end

-- Delete the records of ids (a non-empty array) in one HDEL.
local function meta_del(ids)
  redis.call('HDEL', K.meta, unpack(ids))
end

-- Whether a record of status s and token tok is the live lease of token:
-- reserved or started.
local function leased_to(s, tok, token)
  return (s == 'l' or s == 'v') and tok == token
end

-- As leased_to, with the record's token text tok (meta_lease_of) and the
-- token as the caller sent it: the texts are compared first (a token sent
-- back as it was handed out), then, if they differ, their numbers, as
-- leased_to compares them.
local function leased_text(s, tok, token)
  return (s == 'l' or s == 'v') and (tok == token or tonumber(tok) == tonumber(token))
end

-- Whether m is the live lease of token.
local function holds(m, token)
  return leased_to(m.s, m.token, token)
end
