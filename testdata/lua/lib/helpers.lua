-- A lib module for jobs.lua.
local M = {}
M.greeting = "jobs"
function M.is_weekend(day) return day == "sat" or day == "sun" end
return M
