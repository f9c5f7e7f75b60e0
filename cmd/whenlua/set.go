package main

import (
	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// setCommand is `whenlua set [--type T] NAME=VALUE ...`: atomic, durable
// when it returns, and triggers the when-jobs that become due.
func setCommand(e *env) *cli.Command {
	return assignCommand(e, "set", "set variables atomically; triggers when-jobs", whenlua.ModeSet, nil)
}
