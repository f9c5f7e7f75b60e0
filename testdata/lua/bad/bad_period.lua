-- want: bad_period.lua:4: unknown unit "fortnights"

every("minute", "true")
every("2 fortnights", "true")
