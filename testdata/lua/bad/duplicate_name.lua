-- want: duplicate_name.lua:4: job name "a" is used twice in this file (first at line 3)

when("x", "true", { name = "a" })
every("hour", "true", { name = "a" })
