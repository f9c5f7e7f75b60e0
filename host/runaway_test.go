package host

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunawayLuaIsStoppedAtTheLimitAndOtherJobsKeepTheirSchedule(t *testing.T) {
	t.Parallel()
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/top.lua", "when('x', 'true')\nwhile true do end\n")
	writeFile(t, p.JobsDir+"/hooks.lua", `
when(function() if vars.spin then while true do end end return false end, "true", {name="cond"})
when("false", "true", {name="pre", pre=function() while true do end end})
when("false", "true", {name="post", post=function() while true do end end})
`)
	writeFile(t, p.JobsDir+"/tick.lua", `every("10 seconds", "true", {name="tick"})`)
	clock := NewFakeClock(testEpoch)
	te := openTestEngine(t, p, clock)
	ctx := context.Background()

	if f, _ := te.fileStatusOf("top.lua"); !strings.HasPrefix(f.Error, p.JobsDir+"/top.lua:2:") {
		t.Errorf("top-level runaway: status error %q, want top.lua:2:", f.Error)
	}
	te.set("spin", true)
	s := te.status()
	if len(s.CondErrors) != 1 || !strings.Contains(s.CondErrors[0], "hooks.lua:2:") {
		t.Errorf("condition runaway: %q, want an error at hooks.lua:2", s.CondErrors)
	}
	if _, err := te.Start(ctx, "pre"); err == nil || !strings.Contains(err.Error(), "hooks.lua:3:") {
		t.Errorf("pre runaway: %v, want an error at hooks.lua:3", err)
	}
	if _, err := te.Start(ctx, "post"); err != nil {
		t.Fatal(err)
	}
	te.waitIdle()
	if r := te.runs("post"); len(r) != 1 || !strings.Contains(r[0].Error, "hooks.lua:4:") {
		t.Errorf("post runaway: %+v, want an error at hooks.lua:4", r)
	}
	// The daemon goes on: the every-job keeps its schedule.
	for i := 1; i <= 2; i++ {
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Set(testEpoch.Add(time.Duration(i) * 10 * time.Second))
		te.waitFor("tick", func() bool { return len(te.runs("tick")) == i })
	}
}

func TestAFailingOnLoadOrOnUnloadIsShownInStatus(t *testing.T) {
	p := testPaths(t, t.TempDir())
	path := p.JobsDir + "/h.lua"
	writeFile(t, path, "when('x', 'true')\non_load(function() error('no load') end)\non_unload(function() error('no unload') end)\n")
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	f, _ := te.fileStatusOf("h.lua")
	if !strings.HasPrefix(f.HookError, "on_load: ") || !strings.Contains(f.HookError, "h.lua:2:") || f.Jobs != 1 {
		t.Fatalf("after load: %+v, want the on_load error at h.lua:2 and the file active", f)
	}
	writeFile(t, path, "when('x', 'true')\n")
	te.reload()
	f, _ = te.fileStatusOf("h.lua")
	if !strings.HasPrefix(f.HookError, "on_unload: ") || !strings.Contains(f.HookError, "h.lua:3:") {
		t.Fatalf("after a reload: hook error %q, want the old version's on_unload error", f.HookError)
	}
	writeFile(t, path, "when('x', 'true') -- again\n")
	te.reload()
	if f, _ = te.fileStatusOf("h.lua"); f.HookError != "" {
		t.Fatalf("after a reload whose hooks are fine: hook error %q", f.HookError)
	}
}

// hoard keeps every 64 KiB string it builds, until it is stopped. At 512
// MiB, sixteen times the test's memory limit, it raises an error of its
// own, so that a memory limit that does not stop it fails the test at once
// rather than at the long time limit or when the machine's memory runs out.
const hoard = "local t, i = {}, 0 while true do i = i + 1; t[i] = string.rep('x', 65536) .. i; if i == 8192 then error('512 MiB hoarded') end end"

// Not parallel: the memory limit measures the whole process's heap, and
// the tests marked parallel run only after this one has ended. Those keep
// their heap far below the default limit while they run together.
func TestRunawayAllocationsAreStoppedAtTheMemoryLimitAndTheDaemonGoesOn(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/top.lua", "when('x', 'true')\n"+hoard+"\n")
	writeFile(t, p.JobsDir+"/hooks.lua", `
when(function() if vars.grow then `+hoard+` end return false end, "true", {name="cond"})
when("false", "true", {name="pre", pre=function() `+hoard+` end})
when("changes('go')", "true", {name="after"})
`)
	// The time limit is long, so that the memory limit is what stops these
	// calls however busy the machine is.
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) {
		o.LuaTimeout = time.Minute
		o.LuaMemoryLimit = 32 << 20
	})
	ctx := context.Background()

	if f, _ := te.fileStatusOf("top.lua"); !strings.HasPrefix(f.Error, p.JobsDir+"/top.lua:2: memory limit of 32 MiB exceeded") {
		t.Errorf("top-level hoard: status error %q, want the memory limit at top.lua:2", f.Error)
	}
	te.set("grow", true)
	if s := te.status(); len(s.CondErrors) != 1 || !strings.Contains(s.CondErrors[0], "hooks.lua:2: memory limit") {
		t.Errorf("condition hoard: %q, want the memory limit at hooks.lua:2", s.CondErrors)
	}
	if _, err := te.Start(ctx, "pre"); err == nil || !strings.Contains(err.Error(), "hooks.lua:3: memory limit") {
		t.Errorf("pre hoard: %v, want the memory limit at hooks.lua:3", err)
	}
	// The daemon goes on: a set still triggers its job.
	if got := te.set("go", 1); len(got) != 1 || got[0] != "after" {
		t.Errorf("set go=1 triggered %v, want [after]", got)
	}
}
