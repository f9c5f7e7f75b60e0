-- want: top_level_error.lua:3: no coffee

error("no coffee")
