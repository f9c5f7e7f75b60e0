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
the exit status is 1. A post hook's error is printed too, but does not change
the exit status: it is the job's process that succeeded or not.`

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
			// once its post hook has returned (under the time limit).
			for {
				r, err := cl.Run(c.Context, serial)
				if err != nil {
					return err
				}
				if r.State != whenlua.RunRunning {
					ending, failed := runEnding(r)
					switch {
					case failed:
						return fmt.Errorf("run %d of %s: %s", r.Serial, r.Job, ending)
					case ending != "":
						fmt.Fprintf(e.stderr, "whenlua: run %d of %s: %s\n", r.Serial, r.Job, ending)
					}
					return nil
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

// runEnding says how a finished run ended when it did not simply succeed
// ("cancelled, signal terminated", "exit code 3", "refused, pre refused",
// "exit code 0, post: ..."), and whether it failed: its process did not
// exit with code 0, or never ran. A post hook's error alone is not a
// failure.
func runEnding(r whenlua.Run) (ending string, failed bool) {
	runErr, postErr := r.Error, ""
	if rest, ok := strings.CutPrefix(runErr, "post: "); ok {
		runErr, postErr = "", "post: "+rest
	} else if i := strings.Index(runErr, "; post: "); i >= 0 {
		runErr, postErr = runErr[:i], runErr[i+2:]
	}
	failed = r.State != whenlua.RunDone || r.Code != 0 || r.Signal != "" || runErr != ""
	if !failed && postErr == "" {
		return "", false
	}
	var parts []string
	if r.State != whenlua.RunDone {
		parts = append(parts, string(r.State))
	}
	if runErr != "" {
		parts = append(parts, runErr)
	}
	switch {
	case r.Signal != "":
		parts = append(parts, "signal "+r.Signal)
	case r.State == whenlua.RunDone:
		parts = append(parts, fmt.Sprintf("exit code %d", r.Code))
	}
	if postErr != "" {
		parts = append(parts, postErr)
	}
	return strings.Join(parts, ", "), failed
}
