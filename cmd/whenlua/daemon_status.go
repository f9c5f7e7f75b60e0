package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// daemonStatusCommand is `whenlua daemon status`: whether the daemon runs,
// its pid, uptime and home; exit 1 when it does not run.
func daemonStatusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "say whether the daemon runs (exit 1 when not), its pid, uptime and home",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := e.Paths()
			if err != nil {
				return err
			}
			ping, err := e.ping(c.Context)
			if err != nil && !errors.Is(err, whenlua.ErrNoDaemon) {
				return err
			}
			up := err == nil
			if c.Bool("json") {
				out := struct {
					Running bool `json:"running"`
					whenlua.Ping
				}{Running: up, Ping: ping}
				if !up {
					out.Home, out.Socket = p.Where(), p.Socket
				}
				if err := e.printJSON(out); err != nil {
					return err
				}
			} else if up {
				fmt.Fprintf(e.stdout, "running\tpid %d\tup %s\thome %s\tversion %s\n",
					ping.PID, fmtDuration(time.Since(ping.Started)), ping.Home, ping.Version)
			} else {
				fmt.Fprintf(e.stdout, "stopped\thome %s\n", p.Where())
			}
			if !up {
				return silentExit(1)
			}
			return nil
		},
	}
}
