/**
 * Atomic reservation script for the sliding-log QPS budget (one EVALSHA per acquire).
 *
 * KEYS[1]  sorted set: member = reservation id, score = reserved start time
 *          in microseconds on Redis's clock (TIME).
 * ARGV[1]  limit N (calls per window)
 * ARGV[2]  window in µs (1 s + safety margin)
 * ARGV[3]  max wait in µs
 * ARGV[4]  unique member id for this reservation
 * ARGV[5]  "1" to only look: answer as if reserving, but reserve nothing
 *
 * Invariant kept on the set: every N+1 consecutive reservations (by time) span
 * at least `window`, i.e. no half-open interval of length `window` holds more
 * than N reserved starts.
 *
 * The new slot is the earliest time t >= now at which inserting t keeps the
 * invariant. Normally that is max(now, Nth most recent + window) (FIFO), but if a
 * reservation was given back (ZREM on abort) the hole it left is reused.
 * Feasibility only changes at now and at r + window for each reservation r, so
 * those are the only candidates; the last one (newest + window) always fits.
 *
 * Returns {1, delayUs, nowUs} when reserved, {0, retryAfterUs, nowUs} when the
 * slot is further away than max wait (nothing is reserved then).
 */
export const RESERVE_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local maxWait = tonumber(ARGV[3])
local member = ARGV[4]

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local raw = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local k = #raw / 2
local s = {}
for i = 1, k do s[i] = tonumber(raw[2 * i]) end

local t = now
if k >= limit then
  -- p = number of reservations <= c; checks every group of N+1 consecutive
  -- entries that would contain c.
  local function fits(c, p)
    local lo = limit - (k - p)
    if lo < 0 then lo = 0 end
    local hi = limit
    if hi > p then hi = p end
    for x = lo, hi do
      local left = c
      if x > 0 then left = s[p - x + 1] end
      local right = c
      if x < limit then right = s[p + limit - x] end
      if right - left < window then return false end
    end
    return true
  end
  local p = 0
  local function upTo(c)
    while p < k and s[p + 1] <= c do p = p + 1 end
    return p
  end
  t = nil
  if fits(now, upTo(now)) then t = now end
  local i = 1
  while t == nil and i <= k do
    local c = s[i] + window
    if c > now and (i == 1 or s[i] ~= s[i - 1]) and fits(c, upTo(c)) then t = c end
    i = i + 1
  end
  if t == nil then t = s[k] + window end
end

local delay = t - now
if delay > maxWait then
  return {0, delay - maxWait, now}
end
if ARGV[5] == '1' then
  return {1, delay, now}
end
redis.call('ZADD', key, t, member)
local last = t
if k > 0 and s[k] > last then last = s[k] end
redis.call('PEXPIRE', key, math.ceil((last - now + window) / 1000) + 1000)
return {1, delay, now}
`;

/** Name under which the script is registered on the ioredis client (defineCommand). */
export const RESERVE_COMMAND = 'kycQpsBudgetReserve';
