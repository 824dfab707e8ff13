-- take.lua: the leader pops a batch off the head of a list in one step, fenced like every
-- leader write. The leader waits for an empty list with BLMOVE <list> <list> LEFT LEFT (a
-- rotation of one entry onto itself: it blocks, and changes nothing), then pops with this
-- script, so a process that lost the lease can never take what belongs to the new leader.
--
-- KEYS[1]  sb:{ID}:leader   string: the leader's token
-- KEYS[2]  the list: sb:{ID}:outcomes (outcome JSONs), sb:{ID}:events (notices) or
--          sb:{ID}:inbox (task ids: the leader reads their rows with HMGET, outside the script)
-- ARGV[1]  the caller's token
-- ARGV[2]  the most entries to pop
--
-- Returns the entries as an array, empty when the list was empty; an error starting
-- with LEASELOST (nothing popped) when the lease is not the caller's. (An array, not one joined
-- string: the leader parses replies with hiredis, and Lua's table.concat of a batch of rows
-- cost three times the rest of the script.)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASELOST take: the leader lease is not held by this token')
end
local items = redis.call('LPOP', KEYS[2], ARGV[2])
if not items then
  return {}
end
return items
