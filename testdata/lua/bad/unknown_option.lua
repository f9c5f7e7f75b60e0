-- want: unknown_option.lua:3: unknown option "nmae"

when("x", "true", { nmae = "typo" })
