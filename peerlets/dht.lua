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
-- From the REPL of a node that runs it (name it, or give its app id as
-- `.apps` shows it; a peerlet calling its own kind leaves the app out):
--   dht = peerlet.lookup(kbr.key("colour"), "dht")
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
  local set = kbr.replica_set(kbr.key(k), n or R)
  if #set == 0 and #kbr.neighbor_set(1) == 0 then
    return { kbr.id() }  -- alone on the ring: every key is ours
  end
  return set
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

-- Sends the items `names` to `node` as `op` ("store" or "drop"), a few
-- items per message.
local function push(node, names, op)
  for i = 1, #names, BATCH do
    local items = {}
    for j = i, math.min(i + BATCH - 1, #names) do
      local item = { k = names[j] }
      if op == "store" then item.rec = store.get(names[j]) end
      items[#items + 1] = item
    end
    kbr.send(node, { op = op, items = items })
  end
end

local was_root = {}  -- items this node spread as their root

-- What the root of item `k` tells others, gathered per node in `plan`
-- (node id -> {node, copies, drops}) so each node gets one message: a copy
-- to each other replica, and "drop yours" to the node just past the replica
-- set (it held a copy before a node joined in front of it).
local function spread(plan, k)
  was_root[k] = true
  local set = replicas(k, R + 1)
  for i = 2, #set do
    local e = plan[set[i].id] or { node = set[i], copies = {}, drops = {} }
    plan[set[i].id] = e
    local list = i <= R and e.copies or e.drops
    list[#list + 1] = k
  end
end

local function send(plan)
  for _, e in pairs(plan) do
    push(e.node, e.copies, "store")
    push(e.node, e.drops, "drop")
  end
end

-- The root's side of every write: keep it, then copy it to the replicas.
local function write(k, rec)
  if not is_root(k) then
    error("dht: this node is not the root of `" .. k ..
          "`; call it through peerlet.lookup(kbr.key(k))", 3)
  end
  store.put(k, rec)
  local plan = {}
  spread(plan, k)
  send(plan)
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

-- Spreads every item this node is root of over its replica set as the
-- ring is now, and hands items whose root is now another node (one that
-- joined in front of us) over to that root.
local function repair()
  local plan, before = {}, was_root
  was_root = {}
  for _, k in ipairs(store.keys()) do
    if is_root(k) then
      spread(plan, k)
    elseif before[k] then
      kbr.route(kbr.key(k), { op = "store", items = { { k = k, rec = store.get(k) } } })
    end
  end
  send(plan)
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
    local plan = {}
    for _, item in ipairs(msg.items) do
      -- An item handed over to us as its new root: spread it at once.
      if merge(item.k, item.rec) and is_root(item.k) then spread(plan, item.k) end
    end
    send(plan)
  elseif msg.op == "drop" then
    for _, item in ipairs(msg.items) do
      if not is_root(item.k) then store.remove(item.k) end
    end
  else
    log.warn("dht: unknown message from " .. from.addr)
  end
end

return P
