-- hostile: deliver() counts upwards and never returns.
-- expect: the upcall is aborted by the instruction budget and reported with
--         the peerlet's name, the upcall and the line; after three aborts the
--         peerlet is stopped; the node and the other peerlets go on.
local P = {}

function P.deliver(key, msg, from)
  local n = 0
  repeat n = n + 1 until n < 0
end

return P
