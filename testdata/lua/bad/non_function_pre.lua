-- want: non_function_pre.lua:5: option pre must be a function, not a string



when("x", "true", { pre = "one" })
