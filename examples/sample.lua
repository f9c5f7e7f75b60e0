-- The sample job file `whenlua daemon run` installs on a fresh home. Every
-- *.lua file directly in the jobs directory is a job file; saving one reloads
-- it. From another terminal, try:
--
--   whenlua set greeting=world       -> sample.greet runs once
--   whenlua set greeting=world       -> nothing: greeting did not change
--   whenlua set greeting=again       -> sample.greet runs again
--   whenlua log                      -> the runs; whenlua output SERIAL shows what one printed
--   whenlua set --type int load=7    -> sample.busy runs (load went to 6 or more)
--   whenlua status                   -> this file, its load time, the next run of sample.uptime

-- Every 10 minutes, on the clock (…:00, …:10, …), record the load average
-- in a variable, so that when-jobs can react to it.
every("10 minutes", [[
  whenlua set --type float load=$(cut -d' ' -f1 /proc/loadavg)
]], { name = "sample.uptime" })

-- Runs each time greeting changes to a new value.
when(function() return changes("greeting") end,
     [[ echo "hello, $greeting" ]],
     { name = "sample.greet" })

-- Runs when load rises to 6 or more; not again until it has gone below 6.
-- (Comparing an unset variable with a number is an error, shown by
-- `whenlua status`, so the condition checks that load is set.)
when("load ~= nil and load >= 6", [[ echo "busy: load is $load" ]],
     { name = "sample.busy", pre = one() })
