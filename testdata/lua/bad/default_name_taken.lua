-- want: default_name_taken.lua:4: job name "default_name_taken.1" is used twice

when("x", "true")
when("y", "true", { name = "default_name_taken.1" })
