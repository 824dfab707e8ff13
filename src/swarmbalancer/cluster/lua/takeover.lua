-- takeover.lua: a new leader takes the swarm over, in one atomic step (docs/distributed.md).
--
-- KEYS[1]  sb:{ID}:leader    string: the leader's token (the caller must hold the lease)
-- KEYS[2]  sb:{ID}:epoch     integer: incremented here; leases of older epochs are void
-- KEYS[3]  sb:{ID}:tasks     hash: task id -> row (JSON)
-- KEYS[4]  sb:{ID}:finished  zset: done and cancelled task ids -> Unix time finished
-- KEYS[5]  sb:{ID}:dead      zset: failed task ids (dead letters) -> Unix time failed
-- KEYS[6]  sb:{ID}:inbox     list: submitted ids the old leader had not taken (emptied here)
-- KEYS[7]  sb:{ID}:leases    hash: lease id -> "<agent> <task> <epoch>" (emptied here)
-- KEYS[8]  sb:{ID}:agents    hash: agent id -> registration (read: whose ready list to empty)
-- KEYS[9]  sb:{ID}:beats     hash: agent id -> last heartbeat (read, likewise)
-- Also every sb:{ID}:ready:<agent> list of an agent named in agents or beats (emptied here);
-- these keys are built from the prefix of KEYS[1], legal as every key shares the hash tag.
-- ARGV[1]  the caller's token
--
-- Returns {epoch, row, row, ...}: the new epoch, then the row of every task in neither
-- finished nor dead (waiting or running: the caller re-submits them). The rows come unordered:
-- the caller sorts them by their `seq`, which it parses anyway, rather than this script
-- decoding every row in the server's one thread. An error when the caller's token is not in
-- leader (the lease passed to another process).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASELOST takeover: the leader lease is not held by this token')
end
local epoch = redis.call('INCR', KEYS[2])
local out = {epoch}
local ids = redis.call('HKEYS', KEYS[3])
for i = 1, #ids do
  local id = ids[i]
  if not redis.call('ZSCORE', KEYS[4], id) and not redis.call('ZSCORE', KEYS[5], id) then
    out[#out + 1] = redis.call('HGET', KEYS[3], id)
  end
end
redis.call('DEL', KEYS[6], KEYS[7])
local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #'leader')
for _, hash in ipairs({KEYS[8], KEYS[9]}) do
  local agents = redis.call('HKEYS', hash)
  for i = 1, #agents do
    redis.call('DEL', prefix .. 'ready:' .. agents[i])
  end
end
return out
