package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A hook that mails in a loop starts at most maxMailsInFlight sendmail
// processes; it used to start one per call, all at once.
func TestAHookThatMailsInALoopStartsBoundedSendmails(t *testing.T) {
	dir := t.TempDir()
	sendmail := filepath.Join(dir, "sendmail")
	starts, release := filepath.Join(dir, "starts"), filepath.Join(dir, "release")
	// Each sendmail notes its start, then waits to be released.
	writeFile(t, sendmail, "#!/bin/sh\necho started >> "+starts+"\nwhile [ ! -e "+release+" ]; do sleep 0.05; done\ncat > /dev/null\n")
	if err := os.Chmod(sendmail, 0o755); err != nil {
		t.Fatal(err)
	}
	te, _ := clockedEngine(t, "m.lua", `
local m = mailto("me@example.com")
when("go", "true", { name = "mailer", post = function(r) for i = 1, 100 do m(r) end end })`, testEpoch)
	te.opts.Sendmail = sendmail
	te.set("go", true)
	te.waitIdle()
	writeFile(t, release, "")
	te.mail.Wait()
	b, err := os.ReadFile(starts)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "started"); n != maxMailsInFlight {
		t.Fatalf("%d sendmail processes started for 100 mails at once, want %d", n, maxMailsInFlight)
	}
}
