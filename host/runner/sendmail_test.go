package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSendmail writes an executable sendmail script to a temp dir.
func fakeSendmail(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sendmail")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSendMailPassesMessageToSendmailT(t *testing.T) {
	got := filepath.Join(t.TempDir(), "mail")
	sendmail := fakeSendmail(t, `[ "$1" = -t ] && [ $# = 1 ] || exit 9
cat > '`+got+`'`)
	msg := []byte("To: me@example.com\nSubject: job ci\n\nit failed\n")
	if err := SendMail(context.Background(), sendmail, msg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(msg) {
		t.Errorf("sendmail got %q, want %q", b, msg)
	}
}

func TestSendMailFailureCarriesStderr(t *testing.T) {
	sendmail := fakeSendmail(t, "cat >/dev/null; echo 'no such user: me' >&2; exit 67")
	err := SendMail(context.Background(), sendmail, []byte("To: me\n\nx\n"))
	if err == nil || !strings.Contains(err.Error(), "no such user: me") || !strings.Contains(err.Error(), "67") {
		t.Errorf("error = %v, want the exit status and stderr", err)
	}
}

func TestSendMailMissingProgram(t *testing.T) {
	if err := SendMail(context.Background(), filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Error("sendmail that does not exist succeeded")
	}
}

func TestSendMailGivesUpWhenContextEnds(t *testing.T) {
	// The hanging sendmail has a child that holds stderr open too.
	sendmail := fakeSendmail(t, "sleep 1000 & sleep 1000")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := SendMail(ctx, sendmail, []byte("To: me\n\nx\n"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
}
