--@peerlet name=trace type=per-hop version=1
-- peerlets/trace.lua: watch routing. A trace message travels to the root of
-- a key like any other, but this peerlet is per-hop: forward() runs at every
-- node on the way (the sender and the root included) and writes that node
-- and its clock into the message. The root sends the finished path back to
-- the sender, who keeps the last few and logs each one.
--
-- Nodes that do not run trace pass the message on without a word, so they
-- are missing from the path: deploy it everywhere before you trust a path.
-- Times are each node's clock.now(), seconds since that node started; on a
-- simulated ring they share one virtual clock.
--
-- From the REPL (by name, or by its app id as `.apps` shows it; a handle
-- on your own id reaches your own node):
--   t = peerlet.lookup(kbr.id().id, "trace")
--   id = t:trace(kbr.key("somewhere"))    --> 1
--   t:show(id)   --> "3 hops: 5f1c0a9e @12.031 > 8d02b7c4 @12.058 > ..."
--   t:path(id)   --> {{node = {id = ..., addr = ...}, time = 12.031}, ...}
local P = {}

local KEEP = 64  -- paths kept at the sender

local kbr, clock, log = kbr, clock, log

local traces = {}  -- id -> {key, sent, path (nil until it is back)}
local count = 0

-- Starts a trace to the root of `key`; returns its id.
function P.trace(key)
  count = count + 1
  traces[count] = { key = key, sent = clock.now() }
  traces[count - KEEP] = nil
  kbr.route(key, { op = "trace", id = count, origin = kbr.id(), path = {} })
  return count
end

-- Every hop, before the message moves on: add ourselves to the path.
function P.forward(key, msg, next_hop)
  if msg.op ~= "trace" then return end  -- the way back is no trace
  local path = msg.path
  path[#path + 1] = { node = kbr.id(), time = clock.now() }
  return msg
end

local function show(t)
  local hops = {}
  for i, hop in ipairs(t.path) do
    hops[i] = string.format("%s @%.3f", hop.node.id:sub(1, 8), hop.time)
  end
  return (#t.path - 1) .. " hops: " .. table.concat(hops, " > ")
end

function P.deliver(key, msg, from)
  if msg.op == "trace" then        -- at the root: send the path home
    kbr.send(msg.origin, { op = "path", id = msg.id, path = msg.path })
  elseif msg.op == "path" then     -- at the sender: the path is back
    local t = traces[msg.id]
    if not t then return end
    t.path = msg.path
    log.info("trace " .. msg.id .. " to " .. t.key:sub(1, 8) .. ": " .. show(t))
  end
end

-- The path of trace `id`, or nil and why not.
function P.path(id)
  local t = traces[id]
  if not t then return nil, "no trace " .. tostring(id) end
  if not t.path then return nil, "trace " .. id .. " is not back yet" end
  return t.path
end

-- The path of trace `id` as one line of text.
function P.show(id)
  local path, err = P.path(id)
  if not path then return nil, err end
  return show(traces[id])
end

return P
