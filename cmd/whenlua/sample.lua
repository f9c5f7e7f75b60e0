-- A sample job file, installed by whenlua on a fresh home. Every *.lua file
-- directly in this directory is a job file; saving one reloads it. Try:
--
--   whenlua set greeting=world     -> sample.greet runs once
--   whenlua log                    -> its run; whenlua output SERIAL shows what it printed
--   whenlua status                 -> this file, its load time, the next run of sample.uptime

every("10 minutes", [[ uptime ]], { name = "sample.uptime" })

when("greeting ~= nil", [[ echo "hello, $greeting" ]], { name = "sample.greet" })
