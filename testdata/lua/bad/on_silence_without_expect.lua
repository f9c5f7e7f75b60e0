-- want: on_silence_without_expect.lua:2: when: option on_silence needs option expect
when("x", "true", { on_silence = function(info) end })
