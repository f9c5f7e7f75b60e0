-- A load alert, as in the whenjobs manual: sample the load average every
-- minute, and mail when it crosses a threshold (once per crossing: the
-- condition is edge-triggered).

every("minute", [[
  whenlua set --type float load=$(cut -d' ' -f1 /proc/loadavg)
]], { name = "load.sample" })

-- A string condition: bare names are variables, so this reads the variable
-- `load`, not Lua's load() function. It is nil until the first sample, and
-- comparing nil is an error: hence (load or 0).
when("(load or 0) >= 6", [[
  echo "load average is $load on $(hostname)"
  ps -eo pid,pcpu,comm --sort=-pcpu | head -15
]], { name = "load.alert", post = mailto(os.getenv("LOGNAME") or "root") })

-- And a note when it is back to normal.
when("decreases('load') and load < 2", [[ echo "load back to $load" ]],
     { name = "load.normal" })
