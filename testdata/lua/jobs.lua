-- A job file using every declaration form; luaapi's tests load it.
local helpers = require "helpers"

every("10 minutes", [[ df -h / > report.txt ]])

when("free < 1000000", [[ echo "disk low: $free" ]],
     { name = "disk-alert", post = mailto("me@example.com") })

when(function() return changes("commit") and vars.branch == "main" end,
     [[ git checkout "$commit" && make test ]],
     { name = "ci", pre = one(), timeout = "30m",
       post = function(r) if r.code == 0 then set("tested", vars.commit) end end })

every("day", [[ echo daily ]], { pre = max(2) })

when("load >= 6 and type == 'busy'", [[ echo busy ]], { name = "busy" })

when(function()
  return helpers.is_weekend(vars.day)
end, [[ echo weekend ]], { name = "weekend" })

on_load(function() whisper("loaded_" .. helpers.greeting, true) end)
