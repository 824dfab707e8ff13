-- report.lua: a worker's batch of outcomes, in one atomic step (docs/distributed.md).
--
-- KEYS[1] leases    hash: lease id -> "<agent id> <task id> <epoch>"
-- KEYS[2] outcomes  list: outcomes reported under a valid lease, for the leader
-- KEYS[3] counters  hash: counter name -> integer (here: late_results)
-- ARGV[1]           the reporting worker's agent id
-- ARGV[2..]         outcomes (JSON): {"lease", "task", "agent", "ok", "result", "error",
--                   "retryable", "retry_after", "runtime", "usage"}
--
-- An outcome is kept when its lease still exists and names this agent and the outcome's task:
-- the lease is deleted (so a second report of it is late) and the outcome's text, untouched,
-- is pushed to `outcomes`. Any other outcome (lease expired, reassigned by a takeover, another
-- agent's, malformed) is discarded and counted in `late_results`: a worker can only report on
-- tasks leased to it. Returns the number of outcomes kept.

local leases_key, outcomes_key, counters_key = KEYS[1], KEYS[2], KEYS[3]
local agent = ARGV[1]
local kept = {}
local late = 0

-- The lease and task of an outcome. The worker writes {"lease":"<hex>","task":"<id>",... first,
-- read here without decoding the rest (the result may be large); any other text is decoded.
local function lease_and_task(text)
  local lease, task = string.match(text, '^{"lease":"([%w_-]+)","task":"([^"\\]*)",')
  if lease then
    return lease, task
  end
  local ok, o = pcall(cjson.decode, text)
  if ok and type(o) == 'table' and type(o.lease) == 'string' and type(o.task) == 'string' then
    return o.lease, o.task
  end
  return nil, nil
end

for i = 2, #ARGV do
  local lease, task = lease_and_task(ARGV[i])
  local held = false
  if lease then
    local value = redis.call('HGET', leases_key, lease)
    if value then
      local want = agent .. ' ' .. task .. ' '
      -- the rest after agent and task is the epoch, which holds no space
      held = string.sub(value, 1, #want) == want and not string.find(value, ' ', #want + 1, true)
    end
  end
  if held then
    redis.call('HDEL', leases_key, lease)
    kept[#kept + 1] = ARGV[i]
  else
    late = late + 1
  end
end

for first = 1, #kept, 1000 do
  redis.call('RPUSH', outcomes_key, unpack(kept, first, math.min(first + 999, #kept)))
end
if late > 0 then
  redis.call('HINCRBY', counters_key, 'late_results', late)
end
return #kept
