--[[
@script fail
@version 5
@memory level
@wait
@summary A consumer gives up on a leased event (fail): it is retried after
a delay (the backoff policy, or the delay given) or, when asked or when its
attempts are used up, dead-lettered at once with the reason. A reserved
event is charged its attempt here: its handler ran. The reason is cut to
LIMITS.reason_bytes, on a UTF-8 character boundary. A group member
dead-lettered finishes its group as failed (enqueue_group).
@key data unguarded: HEXISTS (lease.lua fresh_exists) only when a record is absent, before any write
@key meta
@key leases
@key retry
@key dead
@key results
@key results_at
@key config
@key counters
@arg id id event id
@arg token token the lease token of the caller
@arg reason text(reason_bytes) text kept with the event (shown in dead letters);
at most LIMITS.reason_bytes bytes are kept (less when a character would be split)
@arg dead bool 1: dead-letter it now; 0: retry unless it was the last attempt
@arg delay_ms whole(0..43200000)? retry delay in ms; '' for the service's backoff policy
@return tuple(action:str,at_ms:int) 'retry', due_ms  or  'dead', died_ms
@error INVALID_ARGUMENT
@error UNKNOWN_EVENT
@error STALE_LEASE
@error CORRUPT_STATE
@error SCHEMA_MISMATCH
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include lease
--@include deadletter
--@include backoff
--@include group_end

-- text cut to at most n bytes, on a UTF-8 character boundary: a cut inside a
-- character would leave a reason that clients cannot decode as text. Backs
-- off at most 3 bytes (the continuation bytes of one character).
local function cut(text, n)
  if #text <= n then
    return text
  end
  local i = n
  while i > n - 3 do
    local b = string.byte(text, i + 1)
    if b < 0x80 or b >= 0xC0 then
      break
    end
    i = i - 1
  end
  return string.sub(text, 1, i)
end

argc(5)
local p = load_policy()
local now = now_ms(p)
local id = ARGV[1]
local reason = cut(ARGV[3], LIMITS.reason_bytes)
local dead = bool_arg(4, 'dead')
local delay = opt_int_arg(5, 'delay_ms', 0, 43200000)
local m = held(id, ARGV[2])
if m.s == 'v' then
  m.attempt = m.attempt + 1
end
redis.call('ZREM', K.leases, id)
count('failed', 1)
if dead or m.attempt >= p.max_attempts then
  if not dead then
    reason = reason .. ' (attempt ' .. m.attempt .. ' of ' .. p.max_attempts .. ')'
  end
  to_dead(id, m, reason, now)
  group_member_failed(m, id, now)
  return {'dead', now}
end
if delay == nil then
  delay = backoff_ms(p, id, m.attempt)
end
m.s, m.token, m.reason = 'w', 0, reason
meta_put(id, m)
redis.call('ZADD', K.retry, now + delay, id)
count('retried', 1)
return {'retry', now + delay}
