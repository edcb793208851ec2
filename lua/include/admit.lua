-- admit: what enqueue and group_enqueue share: the checks of one new event
-- and the writes that make a batch of them ready.
--@include base
--@include counters
--@include policy
--@include ready
--@include record

-- Refuse an event that cannot be admitted: an empty id, or an envelope over
-- max_payload. Called in the validation pass, before any write.
--@cold
local function admit_check(id, env, max_payload)
  if id == '' then
    fail(E.INVALID_ARGUMENT, 'event id must not be empty')
  end
  if #env > max_payload then
    fail(E.PAYLOAD_TOO_LARGE, 'envelope of ' .. id .. ' is ' .. #env .. ' bytes, over the limit of ' .. max_payload)
  end
end

-- Make ids[1..ni] ready at level 0: payloads data_args (id, value, id,
-- value...), each value already carrying the fresh prefix (fresh.lua): no
-- record is written, so meta is not touched at all. LPUSH first: ready is not
-- read before, and as the script's first write a refusal (a key of a foreign
-- type) still leaves nothing written. data and config were read before (on).
local function admit_write(p, ids, ni, data_args)
  on('LPUSH', K.ready, unpack(ids))
  stamp_schema(p)
  redis.call('HSET', K.data, unpack(data_args))
  count('enqueued', ni)
end

-- As admit_write, for a batch with levels above 0: meta's type checked
-- first (HLEN), then to_ready (it reads ready and prio before its first
-- write, so a key of a foreign type still leaves nothing written); each record carries the fields of ext (say a
-- group's g), then its level (field p; levels[i] nil is level 0).
--@cold
local function admit_write_levels(p, ids, ni, data_args, now, levels, ext)
  meta_check()
  to_ready(ids, levels)
  stamp_schema(p)
  redis.call('HSET', K.data, unpack(data_args))
  local margs = {}
  for i = 1, ni do
    local m = meta_new('r', now)
    for f, v in pairs(ext or {}) do
      meta_ext_set(m, f, v)
    end
    meta_ext_set(m, 'p', levels[i] or 0)
    margs[2 * i - 1], margs[2 * i] = ids[i], m
  end
  meta_put_many(margs)
  count('enqueued', ni)
end
