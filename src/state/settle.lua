-- Settles a cost bucket once the answer's actual cost is known (COST_BUDGET_MODE=actual): the
-- bucket's theoretical arrival time (TAT, see gcra.lua) moves forward by a charge or back by a
-- refund, as the in-process limiter's settle does. A charge may push the TAT past the bucket's
-- size: the client is then in debt and refused until it is paid back.
--
-- KEYS[1]  the cost bucket
-- ARGV[1]  the shift in microseconds (points x interval): positive a charge, negative a refund
--
-- Returns 1 when the bucket changed, 0 when there was nothing to refund.

local EPOCH = 1704067200

local time = redis.call('TIME')
local now = (tonumber(time[1]) - EPOCH) * 1000000 + tonumber(time[2])
local shift = tonumber(ARGV[1])

local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat == nil then
  -- A bucket that expired is full: nothing to give back.
  if shift <= 0 then
    return 0
  end
  tat = now
end
if tat < now then
  tat = now
end

local moved = tat + shift
if moved <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%.3f', moved), 'PX', math.ceil((moved - now) / 1000))
return 1
