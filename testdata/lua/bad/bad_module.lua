-- want: bad_module.lua: testdata/lua/bad/lib/broken.lua:2: broken module

require "broken"
