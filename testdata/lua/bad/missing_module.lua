-- want: missing_module.lua:3: module nothere not found

local m = require "nothere"
