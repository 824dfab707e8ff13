-- report.lua: a worker's batch of outcomes, in one atomic step (docs/distributed.md).
--
-- KEYS[1] leases    hash: lease id -> "<agent id> <task id> <epoch>"
-- KEYS[2] outcomes  list: outcomes reported under a valid lease, for the leader
-- KEYS[3] counters  hash: counter name -> integer (here: late_results)
-- ARGV[1]           the reporting worker's agent id
-- ARGV[2..]         outcomes (JSON): {"lease", "task", "agent", "ok", "result", "error",
--                   "retryable", "retry_after", "runtime", "usage"}; a plain success leaves
--                   out error, retryable, retry_after and usage (their defaults)
--
-- An outcome is kept when its lease still exists and names this agent and the outcome's task:
-- the lease is deleted (so a second report of it is late) and the outcome's text, untouched,
-- is pushed to `outcomes`. Any other outcome (lease expired, reassigned by a takeover, another
-- agent's, malformed) is discarded and counted in `late_results`: a worker can only report on
-- tasks leased to it. Returns the number of outcomes kept.

local leases_key, outcomes_key, counters_key = KEYS[1], KEYS[2], KEYS[3]
local agent = ARGV[1]
local STEP = 1000 -- values per command: few calls, well within Lua's stack (unpack)
local find, byte = string.find, string.byte

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

local count = #ARGV - 1
local leases, tasks = {}, {}
for i = 1, count do
  local lease, task = lease_and_task(ARGV[i + 1])
  leases[i], tasks[i] = lease or '', task
end
-- one HMGET, one HDEL and one RPUSH per STEP outcomes, not a command or two each
local values = {}
for j = 1, count, STEP do
  local part = redis.call('HMGET', leases_key, unpack(leases, j, math.min(j + STEP - 1, count)))
  for k = 1, #part do
    values[j + k - 1] = part[k]
  end
end
-- a lease's value is "<agent> <task> <epoch>": compared in place, without making strings
local head = agent .. ' '
local start = #head + 1
local kept, ended, taken = {}, {}, {}
local late = 0
for i = 1, count do
  local value, lease, task = values[i], leases[i], tasks[i]
  local held = false
  if value and task and task ~= '' and not taken[lease]
    and find(value, head, 1, true) == 1 and find(value, task, start, true) == start then
    local after = start + #task
    -- the rest after agent and task is the epoch, which holds no space
    held = byte(value, after) == 32 and not find(value, ' ', after + 1, true)
  end
  if held then
    taken[lease] = true
    ended[#ended + 1] = lease
    kept[#kept + 1] = ARGV[i + 1]
  else
    late = late + 1
  end
end

for first = 1, #kept, STEP do
  local last = math.min(first + STEP - 1, #kept)
  redis.call('HDEL', leases_key, unpack(ended, first, last))
  redis.call('RPUSH', outcomes_key, unpack(kept, first, last))
end
if late > 0 then
  redis.call('HINCRBY', counters_key, 'late_results', late)
end
return #kept
