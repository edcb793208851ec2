-- base: errors and argument parsing, shared by every script.

-- Abort with a typed homing error, in the reply format of keys.json
-- error_reply (ERR_PREFIX is generated from it). Scripts validate everything
-- before their first write (Redis has no rollback), so an abort leaves nothing
-- half done.
--@cold
local function fail(code, msg)
  error({err = ERR_PREFIX .. ' ' .. code .. ' ' .. msg})
end

-- Whole number as text without exponent (tostring would print 1.7e+12).
local function fmt(n)
  return string.format('%d', n)
end

-- text as a finite number, else nil. tonumber alone accepts 'nan' and 'inf',
-- which pass every range check (NaN compares false) and then make ZADD fail
-- after a script's first write.
local function number(text)
  local x = tonumber(text)
  if x and x == x and x ~= math.huge and x ~= -math.huge then
    return x
  end
  return nil
end

-- ARGV[i] as a whole number in [lo, hi]. Without hi the bound is 2^53 - 1,
-- the largest whole number a Lua double holds exactly: a larger one would
-- reach Redis as a float and fail after the script's first write.
local function int_arg(i, name, lo, hi)
  hi = hi or 9007199254740991
  local v = number(ARGV[i])
  if not v or v ~= math.floor(v) or v < lo or (hi and v > hi) then
    fail(E.INVALID_ARGUMENT, name .. ' must be a whole number in [' .. lo .. ', ' ..
      fmt(hi) .. '], got ' .. tostring(ARGV[i]))
  end
  return v
end

-- ARGV[i] as a bool argument: '1' or '0' (the call table's type bool).
local function bool_arg(i, name)
  local v = ARGV[i]
  if v ~= '1' and v ~= '0' then
    fail(E.INVALID_ARGUMENT, name .. " must be 1 or 0, got " .. tostring(v))
  end
  return v == '1'
end

-- ARGV[i] as an optional whole number (type ms?): '' is absent (nil).
local function opt_int_arg(i, name, lo, hi)
  if ARGV[i] == '' then
    return nil
  end
  return int_arg(i, name, lo, hi)
end

-- Number of ARGV entries must be exactly n (catches mismatched batch counts).
local function argc(n)
  if #ARGV ~= n then
    fail(E.INVALID_ARGUMENT, 'expected ' .. n .. ' arguments, got ' .. #ARGV)
  end
end

-- Append values to an array. (Lua's 't[#t+1], t[#t+1] = a, b' evaluates
-- both indexes first and writes one slot twice.)
local function push(t, ...)
  local n = #t
  for i = 1, select('#', ...) do
    t[n + i] = select(i, ...)
  end
end

-- Send cmd to key, the first command a script sends to a key that the
-- generated guard does not check (@key ... unguarded, see lua/build.py): a
-- key of the wrong type is then refused as <prefix> WRONG_TYPE naming the key,
-- as the guard would, instead of Redis's bare WRONGTYPE. Used only before the
-- script's first write, or as that write, so the refusal leaves nothing done.
local function on(cmd, key, ...)
  local r = redis.pcall(cmd, key, ...)
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) == 'WRONGTYPE' then
      error({err = ERR_PREFIX .. ' WRONG_TYPE key ' .. key .. ' holds a ' ..
        redis.call('TYPE', key).ok .. ', expected a ' .. tostring(expected_type(key))})
    end
    error(r)
  end
  return r
end
