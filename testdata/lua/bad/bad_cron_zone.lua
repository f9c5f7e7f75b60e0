-- want: bad_cron_zone.lua:3: cron: option tz: time zone "Europe/Atlantis": unknown

cron("30 2 * * 1-5", "backup",
     { tz = "Europe/Atlantis" })
