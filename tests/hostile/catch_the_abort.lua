-- hostile: tries to survive its own abort: every runaway loop runs under
-- pcall or xpcall, and the error handler runs away too; whatever comes back,
-- it starts again.
-- expect: an abort cannot be caught or handled by the script; the upcall ends
--         with an instruction budget abort; the node goes on.
local P = {}

local function forever()
  while true do end
end

function P.deliver(key, msg, from)
  while true do
    pcall(forever)
    xpcall(forever, forever)
    pcall(pcall, pcall, forever)
    pcall(error, setmetatable({}, { __tostring = forever }))
  end
end

return P
