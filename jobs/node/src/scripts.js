// Lua scripts copied verbatim from github.com/hibiken/asynq v0.26.0,
// internal/rdb/rdb.go (MIT License, Copyright (c) 2019 Kentaro Hibino), so that
// their SHA1 digests, and so EVALSHA, match the scripts asynq's Go client loads.
// Do not reformat: a single changed byte changes the digest.
// KEYS and ARGV are documented next to each script in rdb.go and in client.js.

import { createHash } from 'node:crypto';

const enqueue = `
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "pending",
           "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`;

const enqueueUnique = `
local ok = redis.call("SET", KEYS[1], ARGV[1], "NX", "EX", ARGV[2])
if not ok then
  return -1
end
if redis.call("EXISTS", KEYS[2]) == 1 then
  return 0
end
redis.call("HSET", KEYS[2],
           "msg", ARGV[3],
           "state", "pending",
           "pending_since", ARGV[4],
           "unique_key", KEYS[1])
redis.call("LPUSH", KEYS[3], ARGV[1])
return 1
`;

const schedule = `
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "scheduled")
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[3])
return 1
`;

const scheduleUnique = `
local ok = redis.call("SET", KEYS[1], ARGV[1], "NX", "EX", ARGV[2])
if not ok then
  return -1
end
if redis.call("EXISTS", KEYS[2]) == 1 then
  return 0
end
redis.call("HSET", KEYS[2],
           "msg", ARGV[4],
           "state", "scheduled",
           "unique_key", KEYS[1])
redis.call("ZADD", KEYS[3], ARGV[3], ARGV[1])
return 1
`;

const addToGroup = `
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "aggregating",
	       "group", ARGV[4])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[2])
redis.call("SADD", KEYS[3], ARGV[4])
return 1
`;

const addToGroupUnique = `
local ok = redis.call("SET", KEYS[4], ARGV[2], "NX", "EX", ARGV[5])
if not ok then
  return -1
end
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "aggregating",
	       "group", ARGV[4])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[2])
redis.call("SADD", KEYS[3], ARGV[4])
return 1
`;

function script(name, lua) {
  return Object.freeze({ name, lua, sha: createHash('sha1').update(lua).digest('hex') });
}

/** asynq's enqueue-side scripts, keyed by the name of their Go variable. */
export const scripts = Object.freeze({
  enqueueCmd: script('enqueueCmd', enqueue),
  enqueueUniqueCmd: script('enqueueUniqueCmd', enqueueUnique),
  scheduleCmd: script('scheduleCmd', schedule),
  scheduleUniqueCmd: script('scheduleUniqueCmd', scheduleUnique),
  addToGroupCmd: script('addToGroupCmd', addToGroup),
  addToGroupUniqueCmd: script('addToGroupUniqueCmd', addToGroupUnique),
});
