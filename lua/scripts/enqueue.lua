--[[
@script enqueue
@version 3
@memory grows
@wait
@repeats enqueued
@summary Add a batch of events to a service's ready queue (enqueue and
enqueue_many). Idempotency keys seen within idem_ttl_ms return the first
event's id and add nothing. Validates the whole batch before writing.
@key ready
@key data
@key meta
@key idem
@key idem_at
@key config
@key counters
@key results
@arg max_payload config(max_payload) largest envelope accepted, in bytes
@arg count count(items) number of events in the batch
@arg items list(id:id,payload:envelope,key:key) per event: id, envelope (msgpack
bytes), idempotency key ('' for none)
@return records(|id:str,added:bool) per event its id and 1 if added, or 0 if an
idempotency key matched an earlier event (whose id is returned)
@error INVALID_ARGUMENT a count, size or id is malformed
@error PAYLOAD_TOO_LARGE an envelope is over max_payload
@error DUPLICATE_ID an id already exists in the service with another payload,
twice in the batch, or belongs to a completed event whose result is still kept
(a result belongs to one event). The same id with the same envelope, while
the event is not yet completed, is answered as an idempotent repeat (flag 0).
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include idem
--@include record

local p = load_policy()
local now = now_ms(p)
local max_payload = int_arg(1, 'max_payload', 1)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 3 * n)

-- Pass 1: validate and decide, write nothing.
local out, ids, envs, keys = {}, {}, {}, {}
local in_batch, key_in_batch = {}, {}
-- One HMGET for the whole batch instead of one HEXISTS per event.
local all = {}
for i = 1, n do
  all[i] = ARGV[2 + 3 * (i - 1) + 1]
end
local known = meta_get_many(all)
for i = 1, n do
  local b = 2 + 3 * (i - 1)
  local id, env, key = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if id == '' then
    fail(E.INVALID_ARGUMENT, 'event id must not be empty')
  end
  if #env > max_payload then
    fail(E.PAYLOAD_TOO_LARGE, 'envelope of ' .. id .. ' is ' .. #env .. ' bytes, over the limit of ' .. max_payload)
  end
  local first = nil
  if key ~= '' then
    first = key_in_batch[key] or idem_lookup(key, now)
  end
  if not first and known[i] ~= nil and redis.call('HGET', K.data, id) == env then
    -- The same event sent again (a client retrying after a lost reply): it is
    -- already here, so answer as for an idempotency key instead of refusing.
    first = id
  end
  if first then
    push(out, first, 0)
  else
    if in_batch[id] or known[i] ~= nil or
      redis.call('HEXISTS', K.results, id) == 1 then
      fail(E.DUPLICATE_ID, 'event ' .. id .. ' already exists')
    end
    in_batch[id] = true
    if key ~= '' then
      key_in_batch[key] = id
    end
    push(ids, id)
    push(envs, env)
    push(keys, key)
    push(out, id, 1)
  end
end

-- Pass 2: write.
if #ids > 0 then
  stamp_schema()
  local data_args, meta_args = {}, {}
  local rec = meta_new('r', now)
  for i, id in ipairs(ids) do
    push(data_args, id, envs[i])
    push(meta_args, id, rec)
    if keys[i] ~= '' then
      idem_store(keys[i], id, now, p.idem_ttl_ms)
    end
  end
  redis.call('HSET', K.data, unpack(data_args))
  meta_put_many(meta_args)
  redis.call('LPUSH', K.ready, unpack(ids))
  count('enqueued', #ids)
end
-- Amortised retention: each call retires at most two stale keys.
prune(K.idem_at, K.idem, now, 2)
return out
