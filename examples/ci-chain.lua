-- build -> test -> deploy, chained through variables set by post hooks.
-- A git hook (or anything) starts it:  whenlua set commit=$(git rev-parse HEAD)
-- Each stage runs once per new value of the variable before it.

local repo = os.getenv("CI_REPO") or (os.getenv("HOME") .. "/src/app")

when(function() return changes("commit") and vars.commit ~= nil end,
     string.format([[ git -C %q fetch -q && git -C %q checkout -q "$commit" && make -C %q build ]], repo, repo, repo),
     { name = "ci.build", pre = one(), timeout = "30m",
       post = function(r)
         if r.code == 0 then set("built", vars.commit) end
       end })

when(function() return changes("built") end,
     string.format([[ make -C %q test ]], repo),
     { name = "ci.test", pre = one(), timeout = "30m",
       post = function(r)
         -- set{...} changes both at once: one version each, one evaluation.
         if r.code == 0 then set{ tested = vars.built, test_failures = 0 } end
       end })

when("changes('tested') and branch == 'main'",
     string.format([[ make -C %q deploy ]], repo),
     { name = "ci.deploy", pre = one(),
       post = mailto(os.getenv("LOGNAME") or "root") })
