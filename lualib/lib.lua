-- The part of whenlua's job-file library written in Lua.

-- max(n) returns a pre function that refuses to start a job while n runs of
-- it are already running (info.running lists the runs already running),
-- giving their serials as its reason.
function max(n)
  if type(n) ~= "number" or n < 1 or n ~= math.floor(n) then
    local got = type(n) == "string" and string.format("the string %q", n) or tostring(n)
    error("max: want a whole number of runs of at least 1, not " .. got, 3)
  end
  return function(info)
    local serials = {}
    for _, r in ipairs(info.running) do
      if r.job_name == info.job_name then
        serials[#serials + 1] = tostring(r.serial)
      end
    end
    if #serials < n then
      return true
    end
    local who = n == 1 and "one()" or string.format("max(%d)", n)
    local noun = #serials == 1 and "serial" or "serials"
    return false, string.format("%s: %s %s still running", who, noun, table.concat(serials, ", "))
  end
end

-- one() returns a pre function that refuses to start a job while a run of it
-- is already running.
function one()
  return max(1)
end
