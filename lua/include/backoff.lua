-- backoff: exponential retry delay with jitter. Redis seeds math.random the
-- same way on every call, so the jitter comes from a hash of the event id
-- and attempt instead: spread over a burst, and reproducible in tests.
local function backoff_ms(p, id, attempt)
  local d = p.backoff_base_ms * 2 ^ math.max(attempt - 1, 0)
  if d > p.backoff_max_ms then
    d = p.backoff_max_ms
  end
  local h = attempt
  for i = 1, #id do
    h = (h * 31 + string.byte(id, i)) % 1000003
  end
  return math.floor(d * (1 - p.backoff_jitter * (h / 1000003)))
end
