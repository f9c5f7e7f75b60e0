-- want: bad_expect.lua:3: every: option expect must be positive, not 0
every("1 hour", "true", { name = "fine", expect = "26h" })
every("1 hour", "true", { expect = 0 })
