-- want: eof_syntax_error.lua: syntax error at end of file

function f()
