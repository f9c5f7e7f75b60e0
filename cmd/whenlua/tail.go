package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

const tailDescription = `Prints the run's output from its start and follows it until the run ends (a
finished run's stored output at once). Then, when the run did not succeed (a
non-zero exit code, a signal, a timeout, a cancel, a refusal by pre, a
failure to start, a loss in a crash), one line on stderr says how it ended and
the exit status is 1.`

// tailCommand is `whenlua tail SERIAL`: the run's output from the start,
// followed until the run ends, and how it ended when it failed.
func tailCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "tail",
		Usage:       "follow a running job's output until it ends",
		ArgsUsage:   "SERIAL",
		Description: tailDescription,
		Action: serialAction(e, func(c *cli.Context, cl *whenlua.Client, serial uint64) error {
			if err := cl.Tail(c.Context, serial, e.stdout); err != nil {
				return err
			}
			// The output ends when the process does; the run is recorded
			// once its post hook has returned.
			deadline := time.Now().Add(tailRecordWait)
			for {
				r, err := cl.Run(c.Context, serial)
				if err != nil {
					return err
				}
				if r.State != whenlua.RunRunning {
					if ending := runEnding(r); ending != "" {
						return fmt.Errorf("run %d of %s: %s", r.Serial, r.Job, ending)
					}
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("run %d of %s: its output ended %v ago, but it is not recorded yet", r.Serial, r.Job, tailRecordWait)
				}
				select {
				case <-c.Context.Done():
					return c.Context.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		}),
	}
}

// tailRecordWait bounds the wait for a run's record after its output
// ended: its post hook runs under the time limit, and the commit is quick.
const tailRecordWait = 30 * time.Second

// runEnding says how a finished run failed ("cancelled, signal
// terminated", "exit code 3", "refused"), or "" when it succeeded.
func runEnding(r whenlua.Run) string {
	if r.State == whenlua.RunDone && r.Code == 0 && r.Signal == "" && r.Error == "" {
		return ""
	}
	var parts []string
	if r.State != whenlua.RunDone {
		parts = append(parts, string(r.State))
	}
	if r.Error != "" {
		parts = append(parts, r.Error)
	}
	switch {
	case r.Signal != "":
		parts = append(parts, "signal "+r.Signal)
	case r.State == whenlua.RunDone:
		parts = append(parts, fmt.Sprintf("exit code %d", r.Code))
	}
	return strings.Join(parts, ", ")
}
