package main

import (
	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// whisperCommand is `whenlua whisper [--type T] NAME=VALUE ...`: it stores
// the values without evaluating any when-job.
func whisperCommand(e *env) *cli.Command {
	return assignCommand(e, "whisper", "set variables without triggering anything", whenlua.ModeWhisper, nil)
}
