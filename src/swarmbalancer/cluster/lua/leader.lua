-- leader.lua: renew or give up the leader lease, only while it is still ours (compare and act).
-- Called by the leader every third of the lease's TTL, and once to step down.
--
-- KEYS[1]  sb:{ID}:leader   string with a TTL: the token of the process holding the lease
-- ARGV[1]  the caller's token
-- ARGV[2]  the lease's new TTL in milliseconds; 0 gives the lease up (DEL)
--
-- Returns 1 when the lease was the caller's (renewed, or given up), 0 when another token holds
-- it or it expired: the caller is no longer the leader and must stop at once.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('DEL', KEYS[1])
end
return 1
