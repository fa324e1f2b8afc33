-- hostile: asks single C functions for strings far beyond its memory, hoping
-- they allocate before anyone checks.
-- expect: the first request fails with a memory error (nothing is allocated
--         beyond the limit), the peerlet's memory comes back to where it was,
--         and the node goes on.
local P = {}

function P.deliver(key, msg, from)
  local page = ("p"):rep(4096)
  local book = page:rep(1 << 16)                          -- 256 MiB in one call
  local shelf = table.concat({ book, book, book, book })  -- 1 GiB
  local wide = string.format("%s%s", shelf, shelf)        -- 2 GiB
  local grown = "g"
  for _ = 1, 36 do grown = grown .. grown end             -- 64 GiB by doubling
  return #book + #shelf + #wide + #grown
end

return P
