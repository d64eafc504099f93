"""The Lua scripts: each one command, atomic, timed by the Redis clock (``TIME``), so nodes on
machines whose clocks differ still agree on what has expired.

Node key names follow ``keys.py`` (``prefix:node:N:...``); scripts build them from ARGV, which
ties the cluster to one Redis (not Redis Cluster, where every key must be declared).
"""

from __future__ import annotations

from typing import Any

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Forget a node: its directory entries, room sets, client infos, stats and IP counts.
_CLEAR_NODE = """
local function clear_node(prefix, dir, n)
  local base = prefix .. ':node:' .. n
  for _, c in ipairs(redis.call('HKEYS', base .. ':info')) do
    if redis.call('HGET', dir, c) == n then redis.call('HDEL', dir, c) end
  end
  for _, r in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do
    redis.call('DEL', base .. ':room:' .. r)
  end
  for _, r in ipairs(redis.call('SMEMBERS', base .. ':prooms')) do
    redis.call('DEL', base .. ':presence:' .. r)
  end
  redis.call('DEL', base .. ':info', base .. ':rooms', base .. ':stats', base .. ':ips', base .. ':prooms')
end
"""

# KEYS: nodes, dir. ARGV: prefix, node, ttl_ms, stats (msgpack), sweep limit.
# Renews the node's registration and forgets up to `limit` nodes that expired. Returns 1 when the
# node was registered already, 0 when it was not (a new node, a restarted Redis, or one that was
# swept while it could not reach Redis): the caller then writes its whole state again.
HEARTBEAT = (
    _NOW_MS
    + _CLEAR_NODE
    + """
local prefix, node = ARGV[1], ARGV[2]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, dead in ipairs(expired) do
  if dead ~= node then clear_node(prefix, KEYS[2], dead) end
  redis.call('ZREM', KEYS[1], dead)
end
local known = redis.call('ZSCORE', KEYS[1], node)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), node)
redis.call('SET', prefix .. ':node:' .. node .. ':stats', ARGV[4], 'PX', tonumber(ARGV[3]))
if known then return 1 end
return 0
"""
)

# KEYS: nodes, dir. ARGV: prefix, node. Clears a node's state before it writes it again.
CLEAR = _CLEAR_NODE + "clear_node(ARGV[1], KEYS[2], ARGV[2])\nreturn 1\n"

# KEYS: nodes, dir. ARGV: prefix, node (to leave), at stop.
LEAVE = (
    _CLEAR_NODE + "clear_node(ARGV[1], KEYS[2], ARGV[2])\nredis.call('ZREM', KEYS[1], ARGV[2])\nreturn 1\n"
)

# KEYS: dir. ARGV: prefix, client ID, envelope. Publishes to the node that has the client;
# returns how many subscribers received it (0: no node has it, or that node is not listening).
ROUTE = """
local node = redis.call('HGET', KEYS[1], ARGV[2])
if not node then return 0 end
return redis.call('PUBLISH', ARGV[1] .. ':to:' .. node, ARGV[3])
"""

# KEYS: nodes. ARGV: prefix, what, argument, node to leave out (or '').
# Reads from the live nodes only (registration not expired), so a dead node's state disappears
# from every read when its registration expires, whether or not it has been swept yet.
READ = (
    _NOW_MS
    + """
local prefix, what, arg, skip = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local base = prefix .. ':node:' .. n
  if n ~= skip then
    if what == 'clients' then
      for _, v in ipairs(redis.call('HGETALL', base .. ':info')) do table.insert(out, v) end
    elseif what == 'members' then
      for _, v in ipairs(redis.call('SMEMBERS', base .. ':room:' .. arg)) do table.insert(out, v) end
    elseif what == 'rooms' then
      for _, v in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do table.insert(out, v) end
    elseif what == 'stats' then
      local s = redis.call('GET', base .. ':stats')
      if s then table.insert(out, n); table.insert(out, s) end
    elseif what == 'presence' then
      for _, v in ipairs(redis.call('HGETALL', base .. ':presence:' .. arg)) do table.insert(out, v) end
    elseif what == 'ip' then
      table.insert(out, tonumber(redis.call('HGET', base .. ':ips', arg) or '0'))
    end
  end
end
return out
"""
)

# KEYS: bucket. ARGV: emission interval (µs per point), capacity (points).
# GCRA: the token bucket of the core's limiter (capacity max_points, refilled at
# max_points/window per second) kept as one "theoretical arrival time". Returns 1: allowed.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - interval * capacity > now then return 0 end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 1
"""


# A room's stream starts (or starts again, after Redis lost it) with the epoch the caller proposes;
# a stream left from an earlier life is dropped, as its offsets would not follow.
_STREAM_META = """
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'offset', 0)
end
"""

# KEYS: stream, meta. ARGV: channel, new epoch, history_size, history_ttl ms, meta ttl ms,
# publication head (type 11, room), event frame, envelope head (msgpack).
# One publish to a room with history: the next offset, the publication frame built around the
# event frame, appended and trimmed, both keys' ttl renewed, and published to the room's nodes
# (the envelope head, then the frame). Returns the offset.
PUBLISH_HISTORY = (
    _STREAM_META
    + """
local offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
local frame = ARGV[6] .. struct.pack('>I4I4B', math.floor(offset / 4294967296), offset % 4294967296, #epoch)
  .. epoch .. ARGV[7]
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '0-' .. offset, 'f', frame)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[1], ARGV[8] .. frame)
return offset
"""
)

# KEYS: stream, meta. ARGV: meta ttl ms, new epoch, after ('' for none), limit.
# A room's position, and at most `limit` publications after `after`: {epoch, offset, {id, frame...}}.
READ_HISTORY = (
    _STREAM_META
    + """
redis.call('PEXPIRE', KEYS[2], ARGV[1])
local offset = tonumber(redis.call('HGET', KEYS[2], 'offset'))
local found = {}
if ARGV[3] ~= '' and tonumber(ARGV[3]) < offset then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[3], '+', 'COUNT', ARGV[4])) do
    table.insert(found, entry[1])
    table.insert(found, entry[2][2])
  end
end
return {epoch, offset, found}
"""
)


# KEYS: nodes, this node's ips hash. ARGV: prefix, this node, IP, per-IP limit, cluster-wide
# limit (0: none). Field '*' of a node's ips hash counts all its connections (keys.ALL_IPS).
# Reserves a place for one connection from the IP: the counts of every live node and this one's
# must add up to less than the limit (and, with a cluster-wide limit, all their connections to
# less than that), and this node's counts go up in the same script, so that admissions running
# in parallel on any nodes cannot overshoot. Returns {1, count before}, {0, count} (the IP's
# limit) or {0, count, 'cluster'} (the cluster's).
RESERVE_IP = (
    _NOW_MS
    + """
local prefix, node, ip = ARGV[1], ARGV[2], ARGV[3]
local limit, most = tonumber(ARGV[4]), tonumber(ARGV[5])
local total = tonumber(redis.call('HGET', KEYS[2], ip) or '0')
local everyone = tonumber(redis.call('HGET', KEYS[2], '*') or '0')
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  if n ~= node then
    local counts = redis.call('HMGET', prefix .. ':node:' .. n .. ':ips', ip, '*')
    total = total + tonumber(counts[1] or '0')
    everyone = everyone + tonumber(counts[2] or '0')
  end
end
if total >= limit then return {0, total} end
if most > 0 and everyone >= most then return {0, everyone, 'cluster'} end
redis.call('HINCRBY', KEYS[2], ip, 1)
redis.call('HINCRBY', KEYS[2], '*', 1)
return {1, total}
"""
)

# KEYS: this node's ips hash. ARGV: IP. Gives a reserved place back (a connection closed); the
# field goes when no connection from that IP is left, so the hash holds only IPs connected now.
RELEASE_IP = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HINCRBY', KEYS[1], '*', -1) <= 0 then redis.call('HDEL', KEYS[1], '*') end
return 1
"""


class Scripts:
    """The scripts registered on one client (EVALSHA, loading them again after NOSCRIPT)."""

    def __init__(self, client: Any, publish: str = "PUBLISH") -> None:
        # ``publish``: PUBLISH, or SPUBLISH on a Redis Cluster (the channel in the keys' slot).
        self.heartbeat = client.register_script(HEARTBEAT)
        self.clear = client.register_script(CLEAR)
        self.leave = client.register_script(LEAVE)
        self.route = client.register_script(_publishing(ROUTE, publish))
        self.read = client.register_script(READ)
        self.gcra = client.register_script(GCRA)
        self.publish_history = client.register_script(_publishing(PUBLISH_HISTORY, publish))
        self.read_history = client.register_script(READ_HISTORY)
        self.reserve_ip = client.register_script(RESERVE_IP)
        self.release_ip = client.register_script(RELEASE_IP)

    def all(self) -> tuple[Any, ...]:
        return (
            self.heartbeat,
            self.clear,
            self.leave,
            self.route,
            self.read,
            self.gcra,
            self.publish_history,
            self.read_history,
            self.reserve_ip,
            self.release_ip,
        )

    async def load(self, client: Any) -> None:
        """Load every script (after connecting, and after Redis restarted empty)."""
        for script in self.all():
            await client.script_load(script.script)


def _publishing(source: str, command: str) -> str:
    return source.replace("redis.call('PUBLISH',", f"redis.call('{command}',")
