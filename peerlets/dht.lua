--@peerlet name=dht type=end-node version=1
-- peerlets/dht.lua: a distributed hash table with r copies of every item.
--
-- Item `k` belongs to the root of kbr.key(k); the root and its next r-1
-- successors hold copies: that is kbr.replica_set(kbr.key(k), R). Writes go
-- to the root, which numbers them (the version) and pushes each change to
-- the other replicas. Whenever update() reports a neighbour coming or going,
-- every node pushes the items it is now root of to the current replica set:
-- a value survives up to r-1 replica failures between two such repairs.
-- Between two copies of an item, the higher version wins.
--
-- From the REPL (DHT: this peerlet's app id, as `.apps` shows it; a peerlet
-- calling its own kind leaves the app id out):
--   dht = peerlet.lookup(kbr.key("colour"), DHT)
--   dht:put("colour", "blue")      --> 1             (the version written)
--   dht:put("colour", "red", 7)    --> 7             (an explicit version)
--   dht:put("colour", "old", 3)    --> nil  "stale version 3 (have 7)"
--   dht:get("colour")              --> "red"  7
--   dht:remove("colour")           --> true
-- Items live in this peerlet's store, so a copy outlives a node restart.
local P = {}

local R = 3       -- copies of every item
local BATCH = 32  -- items per repair message

local kbr, store, timer, log = kbr, store, timer, log
local ipairs, pairs, type, error = ipairs, pairs, type, error

-- The replica set of item `k`, root first, as this node sees the ring.
local function replicas(k, n)
  return kbr.replica_set(kbr.key(k), n or R)
end

local function is_root(k)
  local set = replicas(k)
  return set[1] ~= nil and set[1].id == kbr.id().id
end

local function check_name(k)
  if type(k) ~= "string" then error("dht: item names are strings", 3) end
end

-- Keeps `rec` ({v = value, ver = version}; no v: removed) when it is newer
-- than our copy. Returns whether it was.
local function merge(k, rec)
  local old = store.get(k)
  if old and old.ver >= rec.ver then return false end
  store.put(k, rec)
  return true
end

-- Sends copies of `names` to `node`, a few items per message.
local function push(node, names, op)
  for i = 1, #names, BATCH do
    local items = {}
    for j = i, math.min(i + BATCH - 1, #names) do
      items[#items + 1] = { k = names[j], rec = store.get(names[j]) }
    end
    kbr.send(node, { op = op or "store", items = items })
  end
end

-- The root's side of every write: keep it, then copy it to the replicas.
local function write(k, rec)
  if not is_root(k) then
    error("dht: this node is not the root of `" .. k ..
          "`; call it through peerlet.lookup(kbr.key(k))", 3)
  end
  store.put(k, rec)
  local set = replicas(k)
  for i = 2, #set do push(set[i], { k }) end
end

function P.put(k, v, version)
  check_name(k)
  local old = store.get(k)
  local have = old and old.ver or 0
  version = version or have + 1
  if version <= have then
    return nil, "stale version " .. version .. " (have " .. have .. ")"
  end
  write(k, { v = v, ver = version })
  return version
end

function P.get(k)
  check_name(k)
  local rec = store.get(k)
  if rec then return rec.v, rec.ver end
end

function P.remove(k)
  check_name(k)
  local old = store.get(k)
  if not old or old.v == nil then return false end
  write(k, { ver = old.ver + 1 })  -- a tombstone: repairs must not revive it
  return true
end

-- Items this node was root of at the last repair.
local was_root = {}

-- Pushes every item this node is root of to its other replicas, tells the
-- node just past the replica set to drop its stale copy, and hands items
-- whose root is now another node (one that joined) over to that root.
local function repair()
  local to = {}  -- node id -> {node = ..., copies = {names}, drops = {names}}
  local function add(node, field, k)
    local e = to[node.id] or { node = node, copies = {}, drops = {} }
    to[node.id] = e
    e[field][#e[field] + 1] = k
  end
  local now_root = {}
  for _, k in ipairs(store.keys()) do
    local set = replicas(k, R + 1)
    if set[1] and set[1].id == kbr.id().id then
      now_root[k] = true
      for i = 2, math.min(#set, R) do add(set[i], "copies", k) end
      if set[R + 1] then add(set[R + 1], "drops", k) end
    elseif was_root[k] then
      kbr.route(kbr.key(k), { op = "store", items = { { k = k, rec = store.get(k) } } })
    end
  end
  for _, e in pairs(to) do
    push(e.node, e.copies)
    push(e.node, e.drops, "drop")
  end
  was_root = now_root
end

local pending  -- the timer of the next repair, if one is due

function P.update(node, joined)
  -- Wait a moment: one change in the ring brings several updates.
  if not pending then
    pending = timer.after(1, function() pending = nil; repair() end)
  end
end

function P.deliver(key, msg, from)
  if msg.op == "store" then
    local news = {}
    for _, item in ipairs(msg.items) do
      if merge(item.k, item.rec) and is_root(item.k) then news[#news + 1] = item.k end
    end
    -- A handed-over item is new to its root: copy it on to the replicas.
    for _, k in ipairs(news) do
      local set = replicas(k)
      for i = 2, #set do push(set[i], { k }) end
    end
  elseif msg.op == "drop" then
    for _, item in ipairs(msg.items) do
      if not is_root(item.k) then store.remove(item.k) end
    end
  else
    log.warn("dht: unknown message from " .. from.addr)
  end
end

return P
