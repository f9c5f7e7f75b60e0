-- want: bad_timeout.lua:3: option timeout "soon" is not a duration

every("hour", "true", { timeout = "soon" })
