package whenlua

import "context"

// SetMark places a version in the evaluation order of the commit that
// stored it, so that a replay (`whenlua simulate`) can apply and evaluate
// the sets of a commit exactly as the engine did. A commit can hold several
// sets: a group commit of sets from several clients, or the sets of hooks.
// The engine applies each set and queues one evaluation round for it (when
// some when-job may read what it set); rounds run in the order they were
// queued, and a set applied while earlier rounds wait is seen by them.
// The zero SetMark means unknown (a version stored before marks were kept).
type SetMark struct {
	// Set numbers the set within its commit, from 1; the versions of one
	// set share it.
	Set int `json:"set"`
	// Rounds is how many evaluation rounds of this commit's earlier sets
	// (those with Queued) had begun when this set was applied.
	Rounds int `json:"rounds"`
	// Queued: the set queued an evaluation round (some when-job then
	// loaded might read what it set).
	Queued bool `json:"queued,omitempty"`
	// Whisper: the set was stored without evaluating anything.
	Whisper bool `json:"whisper,omitempty"`
}

// VarVersion is one version of a named variable, as HistoryScanner lists
// them.
type VarVersion struct {
	Name string `json:"name"`
	Version
}

// HistoryScanner is implemented by stores and services that can list the
// kept history of every variable at once, for a replay of all of it.
type HistoryScanner interface {
	// ScanHistory calls fn with every kept version of every variable (unset
	// ones included), variable by variable, each variable's versions in
	// the order they were stored. An error of fn stops the scan and is
	// returned.
	ScanHistory(ctx context.Context, fn func(VarVersion) error) error
}
