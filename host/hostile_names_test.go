package host

import (
	"strconv"
	"strings"
	"testing"
)

// Names that are not UTF-8 (a job's, a job file's) are refused at load or
// shown quoted; they used to reach the metrics' labels and end the daemon
// with a panic.
func TestNamesThatAreNotUTF8DoNotEndTheDaemon(t *testing.T) {
	p := testPaths(t, t.TempDir())
	// A named job whose condition raises at its first evaluation.
	writeFile(t, p.JobsDir+"/named.lua", "when(\"n > 1\", \"true\", { name = \"bad\\255\" })\n")
	// An unnamed job in a file whose name is not UTF-8.
	writeFile(t, p.JobsDir+"/\xff.lua", "when(\"n > 1\", \"true\")\n")
	// A file whose name is not UTF-8 and whose job has a name: it loads.
	writeFile(t, p.JobsDir+"/\xfe.lua", "when(\"n > 1\", \"true\", { name = \"fine\" })\n")
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	te.set("n", 2)

	st := te.reload()
	errs := map[string]string{}
	for _, f := range st.Files {
		errs[f.Path[len(p.JobsDir)+1:]] = f.Error
	}
	if e := errs["named.lua"]; !strings.Contains(e, `job name "bad\xff" is not valid UTF-8`) {
		t.Errorf("named.lua: error %q", e)
	}
	if e := errs["\xff.lua"]; !strings.Contains(e, "is not valid UTF-8") || !strings.Contains(e, "give the job a name") {
		t.Errorf("\\xff.lua: error %q", e)
	}
	if e := errs["\xfe.lua"]; e != "" {
		t.Errorf("\\xfe.lua: error %q", e)
	}
	fams := scrapeMetrics(t, te.MetricsHandler())
	if v, ok := metricValue(fams, "whenlua_job_file_load_error", "file="+strconv.Quote("\xfe.lua")); !ok || v != 0 {
		t.Errorf("load error of \\xfe.lua = %v (present %v), want 0", v, ok)
	}
	if v, ok := metricValue(fams, "whenlua_job_file_load_error", "file="+strconv.Quote("\xff.lua")); !ok || v != 1 {
		t.Errorf("load error of \\xff.lua = %v (present %v), want 1", v, ok)
	}
	if got := te.set("n", 0); len(got) != 0 {
		t.Errorf("set triggered %v", got)
	}
}
