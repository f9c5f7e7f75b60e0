-- want: cron_unknown_option.lua:2: unknown option "catchup" (want name, pre, post, timeout, retry, rerun_lost, on, expect, on_silence, tz, catch_up or jitter)
cron("@daily", "true", { catchup = true })
