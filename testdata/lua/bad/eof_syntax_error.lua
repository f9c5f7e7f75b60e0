-- want: eof_syntax_error.lua:3: syntax error at end of file

function f()
