-- A backup at 02:30 local time on weekdays, as a crontab line would have
-- it ("30 2 * * 1-5"). On the night the clocks skip 02:30 it runs at 03:00;
-- on the night they repeat it, once. With catch_up, a night the laptop slept
-- through (or the daemon was down) is made up once when it wakes or starts
-- again. The last good backup time is kept in
-- a variable: `whenlua history backup_ok` lists every successful night, and
-- `whenlua next backup.nightly` the coming ones.

local dest = os.getenv("BACKUP_DEST") or (os.getenv("HOME") .. "/backups")

cron("30 2 * * 1-5", string.format([[
  mkdir -p %q
  tar -czf %q/home-$(date +%%F).tar.gz -C "$HOME" Documents
]], dest, dest), {
  name = "backup.nightly",
  catch_up = true,
  timeout = "2h",
  pre = one(),
  post = function(r)
    if r.code == 0 then
      set("backup_ok", os.date("!%Y-%m-%dT%H:%M:%SZ", r.end_time))
    else
      log("backup failed with code %d (serial %d)", r.code, r.serial)
    end
  end,
})

-- Failures are mailed by a second post-style job, so the hook above stays
-- about state. mailto() can also be used directly as a post function:
--   post = mailto("me@example.com", { only_on_failure = true })
when("changes('backup_request')", [[ tar -czf /tmp/adhoc-backup.tar.gz -C "$HOME" Documents ]],
     { name = "backup.adhoc", post = mailto(os.getenv("LOGNAME") or "root", { only_on_failure = true }) })
