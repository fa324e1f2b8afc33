-- hostile: runs away while its chunk is loaded, before any upcall exists.
-- expect: the install fails with an instruction budget error naming the
--         line; nothing is left half installed; the node goes on.
local squares = {}
local n = 0
while true do n = n + 1 squares[n % 64] = n * n end
return { squares = squares }
