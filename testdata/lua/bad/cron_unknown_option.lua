-- want: cron_unknown_option.lua:2: unknown option "catchup" (want name, pre, post, timeout or tz)
cron("@daily", "true", { catchup = true })
