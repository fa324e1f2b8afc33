-- hostile: routes messages as fast as it can, to keys all over the ring, and
-- arms timers without end, each holding a closure and its message on the
-- host until it fires an hour later.
-- expect: bounded by the node (outgoing queue, send rate, timers); what is
--         over a bound is refused with an error to the peerlet; the node
--         keeps routing for everyone else.
local P = {}
local payload = ("f"):rep(900)

function P.deliver(key, msg, from)
  local seq = 0
  while true do
    seq = seq + 1
    kbr.route(kbr.key("flood " .. seq), { seq = seq, payload = payload })
  end
end

function P.init()
  local n = 0
  while true do
    n = n + 1
    local late = { seq = n, payload = payload }
    timer.after(3600, function() kbr.route(kbr.key("late " .. n), late) end)
  end
end

return P
