-- want: bad_condition.lua:3: when: condition "x >": syntax error

when("x >", "true")
