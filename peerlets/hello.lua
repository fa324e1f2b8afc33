--@peerlet name=hello type=end-node version=1
-- peerlets/hello.lua: the smallest end-node peerlet that does something.
--
-- Every node that runs it sends a greeting to a random key every few
-- seconds. The overlay carries each greeting to that key's root (the node
-- whose id follows the key on the ring), and only there does deliver() run:
-- watch the log to see which node answers for which key.
local P = {}

local count = 0

function P.init()
  timer.every(3, function()
    count = count + 1
    local key = kbr.key(kbr.id().id .. "/" .. count)
    kbr.route(key, { text = "greeting #" .. count, sent = clock.now() })
  end)
end

function P.deliver(key, msg, from)
  local me = kbr.id()
  log.info("hello from " .. from.addr .. " for key " .. key:sub(1, 8) ..
           " (" .. msg.text .. "), delivered at " .. me.addr)
end

return P
