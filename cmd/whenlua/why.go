package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

const whyDescription = `Prints the job, its state now (a when-job's edge state, condition error
and pending hold; an every- or cron-job's next scheduled time), then its
newest evaluations, newest first (the daemon keeps 10 per job, across
restarts; of the jobs removed or renamed, those of the 100 that left last).
Each one says when, what triggered it (a set: which variables and
by whom, as history records the origin: cli, job X post, load of file F; a
load or reload of its file, the daemon's start, the hold timer, a scheduled
time, a retry, whenlua start), and what came of it:

  not due: still true      true now and at the previous evaluation (edge-triggered)
  not due: false           the condition was false
  started serial N         due, and the run started
  not started (serial N): pre refused: ...   the pre hook's reason
  condition error: ...     file:line: message; snapshot and edge state kept
  hold pending: ...        true, waiting for its hold
  suspended: ...           over its time or memory limit too often

then the condition's result and the previous result it was compared with,
and each variable it read with its value and its value at the previous
evaluation. For an every- or cron-job: the scheduled time each firing stood
for (a catch-up, or how much later it fired: jitter). A dry run (whenlua
test) is not kept.

--json prints one object (fields marked ~ are left out when empty):
  job, loaded (false: not loaded now, its kept evaluations remain), kind,
  spec, file, line; result (a when-job's edge state now), cond_error~,
  hold_due~, suspended~; next_scheduled~ and next_fire~ (an every- or
  cron-job's next time, and when it fires after its jitter);
  evaluations: newest first, each with
    job, seq (counts the job's evaluations from 1), time,
    trigger: {kind: set|load|reload|daemon start|hold|schedule|retry|start,
              origin~ (a set's origin, a load's file), names~ (the
              variables a set assigned), time~},
    cond~ (true for a when-job's evaluation: result and prev_result hold),
    result, prev_result, reloaded~, values~: [{name, value, prev~}] (values
    as in history --json; prev absent before the first evaluation),
    outcome: still_true|false|due|started|queued|refused|failed|error|
             suspended|hold_pending,
    serial~ (the run started, queued or refused), reason~ (pre's reason,
    the condition's error, a pending hold's due time), scheduled~ and
    catch_up~ (the scheduled time a firing stood for).`

// whyCommand is `whenlua why JOB [-n N] [--json]`: why a job ran or did not.
func whyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "why",
		Usage:       "print a job's last evaluations: trigger, values read, result, edge state, outcome",
		ArgsUsage:   "JOB",
		Description: whyDescription,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: 10, Usage: "print at most `N` evaluations (0: all kept)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "JOB [-n N]"); err != nil {
				return err
			}
			n, err := countArg(c)
			if err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			rep, err := cl.Why(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			if n > 0 && len(rep.Evaluations) > n {
				rep.Evaluations = rep.Evaluations[:n]
			}
			return e.printJSONOr(c, rep, func() {
				for _, line := range rep.Lines() {
					fmt.Fprintln(e.stdout, line)
				}
			})
		},
	}
}
