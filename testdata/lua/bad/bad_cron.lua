-- want: bad_cron.lua:3: cron expression "61 2 * * *": end of range (61) above maximum (59)

cron("61 2 * * *", "true")
