-- want: runaway_loop.lua:4: time limit of

local n = 0
while true do n = n + 1 end
