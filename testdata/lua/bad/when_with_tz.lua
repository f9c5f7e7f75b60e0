-- want: when_with_tz.lua:2: option tz is for every and cron jobs
when("x > 1", "true", { tz = "UTC" })
