-- want: syntax_error.lua:4: syntax error near

when("x", "true")
if then
