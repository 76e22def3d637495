/**
 * Atomic reservation script for the sliding-log QPS budget (one EVALSHA per acquire; one key, so
 * it runs unchanged on Redis Cluster).
 *
 * KEYS[1]  sorted set: score = reserved start time in microseconds on Redis's clock (TIME);
 *          member = `h<holdUs>:<id>`, the reservation's own hold (see below) and a unique id
 * ARGV[1]  limit N (calls per window)
 * ARGV[2]  hold of the new reservation in µs: 1 s + the margin its caller needs
 * ARGV[3]  max wait in µs
 * ARGV[4]  the new member, `h<holdUs>:<id>` with the same holdUs as ARGV[2]
 * ARGV[5]  "1" to only look: answer as if reserving, but reserve nothing
 *
 * Each reservation carries its own hold h = 1 s + margin, the margin covering how late ITS call may
 * reach the wire (its process's dispatch delay) plus the network allowance. Invariant kept on the set:
 * for every reservation L, fewer than N other reservations start in [s_L, s_L + h_L). Then any N + 1
 * calls include one, the earliest reserved, whose N others cannot all start within its hold: the
 * last of them arrives at Alibaba at least 1 s after it, however late the earliest was dispatched
 * (within its margin). Instances with different dispatch delays thus share one log safely: the
 * spacing after a call is sized by that call's own margin.
 *
 * The new slot is the earliest time t >= now at which inserting t keeps the invariant: FIFO in the
 * common case, and a hole left by a reservation given back (ZREM on abort) is reused. As t grows,
 * feasibility can only begin at now, at s + h of a reservation (t leaves its hold) or just after a
 * reservation (it leaves t's own hold), so those are the only candidates; the largest s + h always
 * fits (past every hold, after every reservation).
 *
 * Reservations whose hold has passed can no longer constrain a new one (t >= now); they are dropped
 * oldest first, stopping at the first one still holding, so every reservation that could share a
 * window with a live one is kept.
 *
 * Returns {1, delayUs, nowUs} when reserved, {0, retryAfterUs, nowUs} when the slot is further away
 * than max wait (nothing is reserved then).
 */
export const RESERVE_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local hold = tonumber(ARGV[2])
local maxWait = tonumber(ARGV[3])
local member = ARGV[4]

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local raw = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local total = #raw / 2
local drop = 0
while drop < total do
  local i = drop + 1
  local h = tonumber(string.match(raw[2 * i - 1], '^h(%d+):')) or hold
  if tonumber(raw[2 * i]) + h > now then break end
  drop = drop + 1
end
if drop > 0 then redis.call('ZREMRANGEBYRANK', key, 0, drop - 1) end

-- s[i]: start, h[i]: hold of the k live reservations, by start
local s, h = {}, {}
local k = total - drop
local lastEnd = now
for i = 1, k do
  local j = drop + i
  s[i] = tonumber(raw[2 * j])
  -- A member without a hold (written by an older version) holds as long as this one.
  h[i] = tonumber(string.match(raw[2 * j - 1], '^h(%d+):')) or hold
  if s[i] + h[i] > lastEnd then lastEnd = s[i] + h[i] end
end

-- number of reservations starting before x
local function before(x)
  local lo, hi = 1, k + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if s[mid] < x then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

local t = now
if k >= limit then
  -- others[i]: reservations other than i starting within i's hold
  local others = {}
  local maxHold = hold
  for i = 1, k do
    others[i] = before(s[i] + h[i]) - before(s[i]) - 1
    if h[i] > maxHold then maxHold = h[i] end
  end
  local function fits(c)
    if before(c + hold) - before(c) > limit - 1 then return false end
    -- every reservation whose hold covers c must have room for one more
    local i = before(c + 1)
    while i >= 1 and s[i] > c - maxHold do
      if s[i] + h[i] > c and others[i] > limit - 2 then return false end
      i = i - 1
    end
    return true
  end
  local candidates = {now}
  for i = 1, k do
    if s[i] + h[i] > now then candidates[#candidates + 1] = s[i] + h[i] end
    if s[i] + 1 > now then candidates[#candidates + 1] = s[i] + 1 end
  end
  table.sort(candidates)
  t = nil
  for _, c in ipairs(candidates) do
    if fits(c) then t = c break end
  end
  if t == nil then t = lastEnd end
end

local delay = t - now
if delay > maxWait then
  return {0, delay - maxWait, now}
end
if ARGV[5] == '1' then
  return {1, delay, now}
end
redis.call('ZADD', key, t, member)
if t + hold > lastEnd then lastEnd = t + hold end
redis.call('PEXPIRE', key, math.ceil((lastEnd - now) / 1000) + 1000)
return {1, delay, now}
`;

/** Name under which the script is registered on the ioredis client (defineCommand). */
export const RESERVE_COMMAND = 'kycQpsBudgetReserve';

/** The member of a reservation: its hold (µs), which the script reads back, and a unique id. */
export const reservationMember = (holdUs: number, id: string): string => `h${holdUs}:${id}`;
