--[[
@script forget
@version 3
@memory level
@summary Forget an empty service (homing services forget): refused with
SERVICE_NOT_EMPTY, nothing written, while it holds anything a user or a
daemon could still want: ready, reserved, leased, expired or dead events,
timers, retries, results or idempotency keys. The dead copies a cancel
left in the ready list (void) are no events: a ready list of only those
(and the wake marker) does not hold it back. Otherwise it deletes what
is left (the policy overrides, the running totals, the fencing sequence,
the rate limit's log of starts, such a ready list and its void);
the client then removes the service from the registry and the due-time
index. A fencing sequence that restarts is safe: tokens are at least
now_ms * 1000, so none repeats one handed out before.
@key ready
@key prio
@key data
@key leases
@key starts
@key timers
@key retry
@key expired
@key dead
@key results
@key results_at
@key idem
@key idem_at
@key seq
@key config
@key counters
@key void
@return value(int) how many keys it deleted (0 for a service with no keys)
@error INVALID_ARGUMENT
@error SERVICE_NOT_EMPTY
]]
--@include base
--@include marker

argc(0)
local held = {}
local function check(name, n)
  if n > 0 then
    held[#held + 1] = n .. ' ' .. name
  end
end
-- The wake marker (ready.lua) is no event, nor a dead copy of a cancelled
-- one (void.lua: its total). The data check below holds back a ready list
-- with any live event, whatever void says.
local marker = redis.call('LINDEX', K.ready, -1) == READY_MARKER and 1 or 0
local dead_copies = tonumber(redis.call('HGET', K.void, '') or '0') or 0
check('ready or reserved', redis.call('LLEN', K.ready) - marker - dead_copies +
  redis.call('ZCARD', K.prio))
check('events', redis.call('HLEN', K.data))
check('leased', redis.call('ZCARD', K.leases))
check('timers', redis.call('ZCARD', K.timers))
check('retrying', redis.call('ZCARD', K.retry))
check('expired', redis.call('LLEN', K.expired))
check('dead letters', redis.call('ZCARD', K.dead))
check('results', redis.call('HLEN', K.results))
check('results kept', redis.call('ZCARD', K.results_at))
check('idempotency keys', redis.call('HLEN', K.idem))
check('idempotency keys kept', redis.call('ZCARD', K.idem_at))
if #held > 0 then
  fail(E.SERVICE_NOT_EMPTY, 'the service holds ' .. table.concat(held, ', ') ..
    ': drain, purge or let them expire first')
end
local deleted = 0
if marker == 1 or dead_copies > 0 then
  deleted = redis.call('DEL', K.ready)
end
return deleted + redis.call('DEL', K.seq, K.config, K.counters, K.starts, K.void)
