--@peerlet name=scribe type=per-hop version=1
-- peerlets/scribe.lua: multicast to groups, after Scribe (Castro et al. 2002).
--
-- A group's root is the root of kbr.key(group). A node joins by routing a
-- join message towards that key. Because this peerlet is per-hop, forward()
-- runs at every node on the way: each one adopts the sender as a child and,
-- unless it is already in the tree, goes on joining in its own name. The
-- join paths of all members merge into a tree rooted at the group's root.
-- A publication is routed to the root, which sends it to its children, who
-- send it to theirs, and so on down the tree.
--
-- The tree is soft state: every node with a reason to be in it (a member,
-- or a node with children) joins again every REFRESH seconds, and a child
-- not heard of for EXPIRE seconds is dropped. A node that does not run this
-- peerlet passes joins on unchanged, so the next node that does adopts the
-- child directly; when a tree node crashes, its children's next joins route
-- around it and graft them back onto the tree.
--
-- From the REPL (by name, or by its app id as `.apps` shows it; a handle
-- on your own id reaches your own node):
--   s = peerlet.lookup(kbr.id().id, "scribe")
--   s:join("news")                 --> true
--   s:publish("news", "hello")     --> true   (from any node, member or not)
--   s:received("news")             --> {"hello"}
--   s:children("news")             --> 2      (this node's children in the tree)
--   s:leave("news")
local P = {}

local REFRESH = 5             -- seconds between the joins that keep a branch alive
local EXPIRE = 3 * REFRESH    -- a child silent this long is dropped
local REMEMBER = 256          -- publications kept, and remembered to drop duplicates

local kbr, clock, pairs, next = kbr, clock, pairs, next

-- group name -> {key, member, children = {id -> {node, seen}},
--                seen = {publication id -> true}, order = {ids, oldest first}}
local groups = {}
-- group name -> what this node received as a member, oldest first (kept
-- after it leaves)
local received = {}

local function group(name)
  assert(type(name) == "string", "scribe: a group name is a string")
  local g = groups[name]
  if not g then
    g = { key = kbr.key(name), member = false, children = {}, seen = {}, order = {} }
    groups[name] = g
  end
  return g
end

local function is_root(g)
  local hop = kbr.local_lookup(g.key, 1)[1]
  return hop ~= nil and hop.id == kbr.id().id
end

local function send_join(name)
  kbr.route(groups[name].key, { op = "join", group = name, child = kbr.id() })
end

-- Joins travel up: every node on the way adopts the node below it.
function P.forward(key, msg, next_hop)
  if msg.op ~= "join" then return end         -- publications pass unchanged
  local me = kbr.id()
  if msg.child.id == me.id then return end    -- our own join, on its way
  local g = group(msg.group)
  local in_tree = g.member or next(g.children) ~= nil
  g.children[msg.child.id] = { node = msg.child, seen = clock.now() }
  if in_tree or next_hop.id == me.id then
    return false                              -- the branch reached the tree
  end
  msg.child = me                              -- graft: join in our own name
  return msg
end

-- Sends a publication to this node's children, and keeps it if a member.
local function pass_down(g, msg)
  if g.seen[msg.id] then return end           -- came twice while the tree moved
  g.seen[msg.id] = true
  g.order[#g.order + 1] = msg.id
  if #g.order > REMEMBER then g.seen[table.remove(g.order, 1)] = nil end
  if g.member then
    local list = received[msg.group]
    list[#list + 1] = msg.data
    if #list > REMEMBER then table.remove(list, 1) end
  end
  for _, child in pairs(g.children) do kbr.send(child.node, msg) end
end

function P.deliver(key, msg, from)
  local g = groups[msg.group]
  if not g then return end                    -- nobody here cares for it
  if msg.op == "publish" then                 -- at the root: down the tree
    msg.op = "multicast"
    pass_down(g, msg)
  elseif msg.op == "multicast" then           -- from our parent
    pass_down(g, msg)
  end
end

function P.join(name)
  group(name).member = true
  received[name] = received[name] or {}
  send_join(name)
  return true
end

function P.leave(name)
  group(name).member = false                  -- the branch withers by itself
  return true
end

local published = 0

function P.publish(name, data)
  published = published + 1
  local id = kbr.id().id .. "/" .. published
  kbr.route(kbr.key(name), { op = "publish", group = name, id = id, data = data })
  return true
end

-- What this node received in `name`, oldest first.
function P.received(name)
  return received[name] or {}
end

function P.children(name)
  local n = 0
  for _ in pairs(groups[name] and groups[name].children or {}) do n = n + 1 end
  return n
end

-- Soft state: refresh our branch, forget silent children and empty groups.
local function refresh()
  local now = clock.now()
  for name, g in pairs(groups) do
    for id, child in pairs(g.children) do
      if now - child.seen > EXPIRE then g.children[id] = nil end
    end
    local needed = g.member or next(g.children) ~= nil
    if not needed then
      groups[name] = nil
    elseif not is_root(g) then
      send_join(name)
    end
  end
end

function P.init()
  timer.every(REFRESH, refresh)
end

return P
