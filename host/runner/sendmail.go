package runner

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// SendMailTimeout bounds a SendMail whose ctx has no earlier deadline.
const SendMailTimeout = time.Minute

// SendMail runs `<sendmail> -t` with msg on stdin, which must hold the
// headers (To:, Subject:, ...) and the body. It gives up when ctx is done or
// after SendMailTimeout, killing sendmail's process group. On failure the
// error includes what sendmail wrote to stderr.
func SendMail(ctx context.Context, sendmail string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, SendMailTimeout)
	defer cancel()
	var stderr cappedBuffer
	cmd := exec.CommandContext(ctx, sendmail, "-t")
	cmd.Stdin = bytes.NewReader(msg)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			return fmt.Errorf("run %s -t: %w: %s", sendmail, err, s)
		}
		return fmt.Errorf("run %s -t: %w", sendmail, err)
	}
	return nil
}

// cappedBuffer keeps the first 4 KiB written to it and discards the rest.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	const capacity = 4 << 10
	if room := capacity - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
