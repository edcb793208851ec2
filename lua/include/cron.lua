-- cron: the next fire time of a recurring timer, computed here once for every
-- port (no per-language cron library to drift). Two kinds of spec:
--   every_ms: ticks at created + k * every_ms;
--   a five-field cron expression (minute hour day-of-month month day-of-week,
--   UTC), with '*', lists 'a,b', ranges 'a-b', steps '*/n' and 'a-b/n',
--   month and weekday names (jan..dec, sun..sat), weekday 7 = Sunday, and
--   @hourly, @daily, @weekly, @monthly, @yearly. As in Vixie cron, when both
--   day fields are restricted a day matching either one fires.
-- Every loop is bounded: a spec that never fires (30 February) is refused.

local CRON_MACROS = {['@hourly'] = '0 * * * *', ['@daily'] = '0 0 * * *',
  ['@midnight'] = '0 0 * * *', ['@weekly'] = '0 0 * * 0', ['@monthly'] = '0 0 1 * *',
  ['@yearly'] = '0 0 1 1 *', ['@annually'] = '0 0 1 1 *'}
local CRON_NAMES = {
  [4] = {jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
    sep = 9, oct = 10, nov = 11, dec = 12},
  [5] = {sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6},
}
local CRON_BOUNDS = {{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
local CRON_WHAT = {'minute', 'hour', 'day of month', 'month', 'day of week'}

local function cron_value(text, i)
  local names = CRON_NAMES[i]
  local v = names and names[string.lower(text)] or nil
  if v == nil and string.match(text, '^%d%d?$') then
    v = tonumber(text)
  end
  local lo, hi = CRON_BOUNDS[i][1], CRON_BOUNDS[i][2]
  if v == nil or v < lo or v > hi then
    fail(E.INVALID_ARGUMENT, 'cron ' .. CRON_WHAT[i] .. ' ' .. text .. ' is not in ' .. lo ..
      '..' .. hi)
  end
  return v
end

-- One field as a set (set[v] = true) and whether it was '*' (unrestricted).
local function cron_field(text, i)
  local lo, hi = CRON_BOUNDS[i][1], CRON_BOUNDS[i][2]
  local set = {}
  for part in string.gmatch(text, '[^,]+') do
    local range, step = string.match(part, '^([^/]+)/(%d+)$')
    if not range then
      range, step = part, nil
    end
    step = step and tonumber(step) or 1
    if step < 1 or step > hi - lo + 1 then
      fail(E.INVALID_ARGUMENT, 'cron step ' .. tostring(step) .. ' in ' .. part .. ' is out of range')
    end
    local a, b
    if range == '*' then
      a, b = lo, hi
    else
      local x, y = string.match(range, '^([^-]+)-([^-]+)$')
      if x then
        a, b = cron_value(x, i), cron_value(y, i)
      else
        a = cron_value(range, i)
        b = part:find('/') and hi or a
      end
    end
    if a > b then
      fail(E.INVALID_ARGUMENT, 'cron range ' .. range .. ' runs backwards')
    end
    for v = a, b, step do
      set[v] = true
    end
  end
  if i == 5 and set[7] then
    set[0] = true -- 7 is Sunday too
  end
  return set, text == '*'
end

local function cron_parse(expr)
  expr = CRON_MACROS[string.lower(expr)] or expr
  local f = {}
  for w in string.gmatch(expr, '%S+') do
    f[#f + 1] = w
  end
  if #f ~= 5 then
    fail(E.INVALID_ARGUMENT, 'a cron expression has 5 fields (minute hour day month weekday), got ' ..
      #f)
  end
  local c = {}
  c.min = cron_field(f[1], 1)
  c.hour = cron_field(f[2], 2)
  c.dom, c.dom_star = cron_field(f[3], 3)
  c.mon = cron_field(f[4], 4)
  c.dow, c.dow_star = cron_field(f[5], 5)
  return c
end

-- Days since 1970-01-01 <-> (year, month, day), proleptic Gregorian (H. Hinnant).
local function days_from_civil(y, m, d)
  if m <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
    math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then
    y = y + 1
  end
  return y, m, d
end

-- The first minute strictly after after_ms that c matches, in ms; nil if
-- none within 28 years (the cycle of weekdays and leap days).
local function cron_next(c, after_ms)
  local start = math.floor(after_ms / 60000) + 1
  local day = math.floor(start / 1440)
  local first = start - day * 1440
  local last_day = day + 366 * 28
  while day <= last_day do
    local y, m, d = civil_from_days(day)
    if not c.mon[m] then
      -- Skip the rest of the month at once.
      local ny, nm = y, m + 1
      if nm > 12 then
        ny, nm = y + 1, 1
      end
      day, first = days_from_civil(ny, nm, 1), 0
    else
      local wd = (day + 4) % 7 -- 1970-01-01 was a Thursday
      local hit
      if c.dom_star or c.dow_star then
        hit = c.dom[d] and c.dow[wd]
      else
        hit = c.dom[d] or c.dow[wd]
      end
      if hit then
        for h = math.floor(first / 60), 23 do
          if c.hour[h] then
            local m0 = (h == math.floor(first / 60)) and first % 60 or 0
            for mi = m0, 59 do
              if c.min[mi] then
                return (day * 1440 + h * 60 + mi) * 60000
              end
            end
          end
        end
      end
      day, first = day + 1, 0
    end
  end
  return nil
end

-- A recurring timer's spec as stored in its record's reason field:
-- 'every <ms> <catch_up>' or 'cron <catch_up> <expression>'.
local function spec_text(every, expr, catch_up)
  if every then
    return 'every ' .. fmt(every) .. ' ' .. catch_up
  end
  return 'cron ' .. catch_up .. ' ' .. expr
end

-- The tick strictly after after_ms of a stored spec (anchor: created ms).
local function spec_next(spec, anchor, after_ms)
  local every = string.match(spec, '^every (%d+) [01]$')
  if every then
    every = tonumber(every)
    if after_ms < anchor then
      return anchor
    end
    return anchor + (math.floor((after_ms - anchor) / every) + 1) * every
  end
  local expr = string.match(spec, '^cron [01] (.+)$')
  if not expr then
    return nil
  end
  return cron_next(cron_parse(expr), after_ms)
end

local function spec_catch_up(spec)
  return string.match(spec, '^every %d+ 1$') ~= nil or string.match(spec, '^cron 1 ') ~= nil
end
