-- GCRA (generic cell rate algorithm) on one client's bucket, the arithmetic governor uses in process.
--
-- The bucket key holds the theoretical arrival time (TAT): the moment the bucket would be full
-- again, in microseconds since EPOCH on Redis's own clock (TIME), so the replicas' clocks never
-- enter the decision. Every key the script touches is in KEYS, and the firewall puts the client's
-- hash tag in all of them, so the script is valid on Redis Cluster as well.
--
-- KEYS[1]  the bucket
-- KEYS[2]  the client's probe cool-down (read with ARGV[4] = "1", written with ARGV[5] > 0)
-- ARGV[1]  emission interval T in microseconds (may carry a fraction)
-- ARGV[2]  burst: the bucket size, at least 1
-- ARGV[3]  n: the points to consume, 1 <= n <= burst (the caller answers 0 and n > burst itself)
-- ARGV[4]  "1": refuse while the cool-down key lives, before the bucket is looked at
-- ARGV[5]  milliseconds of cool-down to start when this check is refused ("0": none)
--
-- Returns {verdict, remaining, retry_after_us, reset_us}:
--   verdict 1 allowed (n consumed), 0 limited (nothing consumed), 2 cooling down;
--   remaining: whole points left after this check; retry_after_us: when n points fit (0 if
--   allowed; the cool-down left when cooling); reset_us: when the bucket is full again.

-- 2024-01-01T00:00:00Z. Timestamps relative to it stay near 10^14 microseconds for decades, where
-- a double's spacing is about 0.02 us: fractions of an interval survive the arithmetic.
local EPOCH = 1704067200
-- Rounding slack for floor/ceil, far below the microsecond resolution of the answers.
local SLACK = 0.1

local time = redis.call('TIME')
local now = (tonumber(time[1]) - EPOCH) * 1000000 + tonumber(time[2])

if ARGV[4] == '1' then
  local cooling = redis.call('PTTL', KEYS[2])
  if cooling > 0 then
    return {2, 0, cooling * 1000, cooling * 1000}
  end
end

local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
-- How far ahead of now the TAT may run: the bucket minus the cell being admitted.
local tau = interval * (burst - 1)

local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then
  tat = now
end

-- The n-th point fits once the TAT, pushed by the n - 1 points before it, is within tau of now.
local earliest = tat + (n - 1) * interval - tau
if now < earliest - SLACK then
  local cooldown_ms = tonumber(ARGV[5])
  if cooldown_ms > 0 then
    redis.call('SET', KEYS[2], '1', 'PX', cooldown_ms)
  end
  return {0, 0, math.ceil(earliest - now - SLACK), math.ceil(tat - now - SLACK)}
end

local next_tat = tat + n * interval
local remaining = math.floor((now + tau + interval - next_tat + SLACK) / interval)
local reset = next_tat - now
-- The key lives exactly as long as the bucket needs to refill: an idle client costs no memory.
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil(reset / 1000))
return {1, remaining, 0, math.ceil(reset - SLACK)}
