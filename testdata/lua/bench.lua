-- An 80-line job file for BenchmarkLoad: 14 groups of an every-job,
-- a string condition and a function condition.
local threshold = 1000000

every("1 minutes", [[ echo tick 1 > out.txt ]], { name = "bench-every-1" })
when("free1 < threshold1 and changes('disk1')", [[ echo low 1 ]], { name = "bench-when-1", pre = one() })
when(function() return vars.load1 and vars.load1 > 6 end,
     [[ echo busy 1 ]], { name = "bench-fn-1", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("2 minutes", [[ echo tick 2 > out.txt ]], { name = "bench-every-2" })
when("free2 < threshold2 and changes('disk2')", [[ echo low 2 ]], { name = "bench-when-2", pre = one() })
when(function() return vars.load2 and vars.load2 > 6 end,
     [[ echo busy 2 ]], { name = "bench-fn-2", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("3 minutes", [[ echo tick 3 > out.txt ]], { name = "bench-every-3" })
when("free3 < threshold3 and changes('disk3')", [[ echo low 3 ]], { name = "bench-when-3", pre = one() })
when(function() return vars.load3 and vars.load3 > 6 end,
     [[ echo busy 3 ]], { name = "bench-fn-3", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("4 minutes", [[ echo tick 4 > out.txt ]], { name = "bench-every-4" })
when("free4 < threshold4 and changes('disk4')", [[ echo low 4 ]], { name = "bench-when-4", pre = one() })
when(function() return vars.load4 and vars.load4 > 6 end,
     [[ echo busy 4 ]], { name = "bench-fn-4", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("5 minutes", [[ echo tick 5 > out.txt ]], { name = "bench-every-5" })
when("free5 < threshold5 and changes('disk5')", [[ echo low 5 ]], { name = "bench-when-5", pre = one() })
when(function() return vars.load5 and vars.load5 > 6 end,
     [[ echo busy 5 ]], { name = "bench-fn-5", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("6 minutes", [[ echo tick 6 > out.txt ]], { name = "bench-every-6" })
when("free6 < threshold6 and changes('disk6')", [[ echo low 6 ]], { name = "bench-when-6", pre = one() })
when(function() return vars.load6 and vars.load6 > 6 end,
     [[ echo busy 6 ]], { name = "bench-fn-6", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("7 minutes", [[ echo tick 7 > out.txt ]], { name = "bench-every-7" })
when("free7 < threshold7 and changes('disk7')", [[ echo low 7 ]], { name = "bench-when-7", pre = one() })
when(function() return vars.load7 and vars.load7 > 6 end,
     [[ echo busy 7 ]], { name = "bench-fn-7", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("8 minutes", [[ echo tick 8 > out.txt ]], { name = "bench-every-8" })
when("free8 < threshold8 and changes('disk8')", [[ echo low 8 ]], { name = "bench-when-8", pre = one() })
when(function() return vars.load8 and vars.load8 > 6 end,
     [[ echo busy 8 ]], { name = "bench-fn-8", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("9 minutes", [[ echo tick 9 > out.txt ]], { name = "bench-every-9" })
when("free9 < threshold9 and changes('disk9')", [[ echo low 9 ]], { name = "bench-when-9", pre = one() })
when(function() return vars.load9 and vars.load9 > 6 end,
     [[ echo busy 9 ]], { name = "bench-fn-9", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("10 minutes", [[ echo tick 10 > out.txt ]], { name = "bench-every-10" })
when("free10 < threshold10 and changes('disk10')", [[ echo low 10 ]], { name = "bench-when-10", pre = one() })
when(function() return vars.load10 and vars.load10 > 6 end,
     [[ echo busy 10 ]], { name = "bench-fn-10", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("11 minutes", [[ echo tick 11 > out.txt ]], { name = "bench-every-11" })
when("free11 < threshold11 and changes('disk11')", [[ echo low 11 ]], { name = "bench-when-11", pre = one() })
when(function() return vars.load11 and vars.load11 > 6 end,
     [[ echo busy 11 ]], { name = "bench-fn-11", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("12 minutes", [[ echo tick 12 > out.txt ]], { name = "bench-every-12" })
when("free12 < threshold12 and changes('disk12')", [[ echo low 12 ]], { name = "bench-when-12", pre = one() })
when(function() return vars.load12 and vars.load12 > 6 end,
     [[ echo busy 12 ]], { name = "bench-fn-12", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("13 minutes", [[ echo tick 13 > out.txt ]], { name = "bench-every-13" })
when("free13 < threshold13 and changes('disk13')", [[ echo low 13 ]], { name = "bench-when-13", pre = one() })
when(function() return vars.load13 and vars.load13 > 6 end,
     [[ echo busy 13 ]], { name = "bench-fn-13", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

every("14 minutes", [[ echo tick 14 > out.txt ]], { name = "bench-every-14" })
when("free14 < threshold14 and changes('disk14')", [[ echo low 14 ]], { name = "bench-when-14", pre = one() })
when(function() return vars.load14 and vars.load14 > 6 end,
     [[ echo busy 14 ]], { name = "bench-fn-14", post = function(r) if r.code ~= 0 then log("failed %d", r.serial) end end })

on_load(function()
  whisper("bench_loaded", true)
end)
-- end
