package main

import (
	"github.com/urfave/cli/v2"
)

// daemonCommand groups the daemon's life: run, start, stop, status, restart.
func daemonCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run, start, stop, restart the daemon or show whether it runs",
		Subcommands: []*cli.Command{
			daemonRunCommand(e),
			daemonStartCommand(e),
			daemonStopCommand(e),
			daemonStatusCommand(e),
			daemonRestartCommand(e),
		},
	}
}
