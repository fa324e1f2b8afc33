--@peerlet name=im type=end-node version=1
-- peerlets/im.lua: instant messages between users on different nodes.
--
-- A user's name is a key: the root of kbr.key(name) keeps that user's
-- presence (which node they are logged in at) and the messages that came
-- while they were away, up to MAX_WAITING. So the peerlet plays two parts:
--   * at the user's own node, the client: login, send, read, logout;
--   * at the root of a name, the post office: register, post, unregister.
-- The client reaches the post office with peerlet.lookup(kbr.key(name)).
-- The post office hands a message to the user's node with a call on that
-- node's id: "delivered" means the node took it. If the node is gone, the
-- call lands at whichever node owns that id now, which refuses it, and the
-- message waits as for a user who logged out.
--
-- From the REPL on the node you are at (by name, or by its app id as
-- `.apps` shows it; a handle on your own id reaches your own node):
--   im = peerlet.lookup(kbr.id().id, "im")
--   im:login("bob")                 --> 2        (messages that waited)
--   im:send("bob", "alice", "hi")   --> "delivered"  (or "queued")
--   im:read("bob")                  --> {{at = 12.5, from = "alice", text = "hello"}, ...}
--   im:logout("bob")
-- The post office of a name copies its record, numbered, to the next R-1
-- nodes: when it fails, the next node is the post office and has it; a node
-- that joins in front as the new one gets it from the old.
local P = {}

local MAX_WAITING = 32  -- messages kept for a user who is away
local MAX_INBOX = 256   -- messages kept unread at a logged-in user's node
local R = 3             -- copies of each post office record

local kbr, log, clock, pcall, type = kbr, log, clock, pcall, type

-- Post office: name -> {node = where the user is (nil: away), waiting = {...}}
local users = {}
local versions = {}  -- name -> version of our copy of its record
-- Client: name -> list of unread messages, for the users logged in here.
local inbox = {}

-- The post office sends its copy to the other replicas; a replica sends
-- its copy to the post office (it may be new and have none). The higher
-- version wins.
local function spread(name)
  local set = kbr.replica_set(kbr.key(name), R)
  local u = users[name] or {}
  local msg = { op = "copy", name = name, ver = versions[name], node = u.node, waiting = u.waiting }
  if set[1] and set[1].id == kbr.id().id then
    for i = 2, #set do kbr.send(set[i], msg) end
  else
    kbr.route(kbr.key(name), msg)  -- to the root, which may have joined just now
  end
end

local function changed(name)
  versions[name] = (versions[name] or 0) + 1
  spread(name)
end

local function user(name)
  assert(type(name) == "string" and name ~= "", "im: a user name is a non-empty string")
  local u = users[name]
  if not u then
    u = { waiting = {} }
    users[name] = u
  end
  return u
end

local function office(name)
  return peerlet.lookup(kbr.key(name))
end

-- Post office side: called at the root of kbr.key(name).

-- `name` is now at `node`; hands over what waited for them.
function P.register(name, node)
  local u = user(name)
  u.node = node
  local waiting = u.waiting
  u.waiting = {}
  changed(name)
  return waiting
end

function P.unregister(name)
  user(name).node = nil
  changed(name)
  return true
end

function P.post(to, msg)
  local u = user(to)
  local node = u.node
  if node then
    -- Hand it to the user's node. A call on a node's id reaches that node;
    -- if it is gone, the node now owning its id answers (false): no one
    -- there took the message, so it waits here like for anyone away.
    local ok, taken = pcall(function() return peerlet.lookup(node.id):take(to, msg) end)
    if ok and taken then return "delivered" end
    if u.node == node then u.node = nil end
  end
  if #u.waiting >= MAX_WAITING then
    return nil, "mailbox of " .. to .. " is full (" .. MAX_WAITING .. " waiting)"
  end
  u.waiting[#u.waiting + 1] = msg
  changed(to)
  return "queued"
end

-- Client side: called on the user's own node.

local function receive(name, msg)
  local box = inbox[name]
  if not box then return false end  -- not logged in here (any more)
  if #box >= MAX_INBOX then table.remove(box, 1) end
  box[#box + 1] = { from = msg.from, text = msg.text, at = msg.at }
  log.info(name .. " got a message from " .. msg.from .. ": " .. msg.text)
  return true
end

function P.login(name)
  inbox[name] = inbox[name] or {}
  local waiting = office(name):register(name, kbr.id())
  for _, msg in ipairs(waiting) do receive(name, msg) end
  return #waiting
end

function P.logout(name)
  inbox[name] = nil
  return office(name):unregister(name)
end

function P.send(from, to, text)
  assert(inbox[from], "im: log in as " .. tostring(from) .. " first")
  return office(to):post(to, { from = from, text = tostring(text), at = clock.now() })
end

-- The unread messages of `name`, oldest first; reading empties the inbox.
function P.read(name)
  local box = inbox[name] or {}
  if inbox[name] then inbox[name] = {} end
  return box
end

-- The post office hands over a message for `name`: true if they are
-- logged in here to take it.
function P.take(name, msg)
  return receive(name, msg)
end

function P.deliver(key, msg, from)
  if type(msg) ~= "table" or msg.op ~= "copy" or type(msg.name) ~= "string"
     or math.type(msg.ver) ~= "integer" or msg.ver <= (versions[msg.name] or 0) then return end
  local waiting = type(msg.waiting) == "table" and msg.waiting or {}
  users[msg.name] = { node = type(msg.node) == "table" and msg.node or nil, waiting = waiting }
  versions[msg.name] = msg.ver
end

local pending  -- the timer of the next spread, if one is due

function P.update(node, joined)
  -- The replica sets changed: copy every record held to where it belongs now.
  if pending then return end
  pending = timer.after(1, function()
    pending = nil
    for name in pairs(versions) do spread(name) end
  end)
end

return P
