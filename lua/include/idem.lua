-- idem: idempotency keys. A key names the first event enqueued with it for
-- idem_ttl_ms; its end is kept in a ZSET and retired a few at a time, as
-- results are (see prune), never by EXPIRE.
--@include prune

-- The id a key still answers for at now, or nil.
--@cold
local function idem_lookup(key, now)
  -- Through on(): enqueue's type guard leaves idem and idem_at to these
  -- reads, which come before any write of the script.
  local known = on('HGET', K.idem, key)
  local until_ms = tonumber(on('ZSCORE', K.idem_at, key))
  if known and until_ms and until_ms > now then
    return known
  end
  return nil
end

--@cold
local function idem_store(key, id, now, ttl)
  redis.call('HSET', K.idem, key, id)
  redis.call('ZADD', K.idem_at, now + ttl, key)
end
