-- want: bad_expect_text.lua:2: cron: option expect "a day" is not a duration
cron("@daily", "true", { expect = "a day" })
