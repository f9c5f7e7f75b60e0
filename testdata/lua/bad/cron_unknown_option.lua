-- want: cron_unknown_option.lua:2: unknown option "catchup" (want name, pre, post, timeout, tz or catch_up)
cron("@daily", "true", { catchup = true })
