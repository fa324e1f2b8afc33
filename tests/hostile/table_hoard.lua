-- hostile: keeps everything it was ever given, in a table that only grows
-- and outlives the upcall.
-- expect: stopped by the peerlet's memory limit (memory or budget aborts on
--         later upcalls); once stopped, all of its memory is given back; the
--         node's memory stays bounded; the other peerlets go on.
local P = {}
local hoard = {}

function P.deliver(key, msg, from)
  for i = #hoard + 1, math.maxinteger do
    hoard[i] = { seq = i, text = "kept " .. i, copy = { i } }
  end
end

return P
