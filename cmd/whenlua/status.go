package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// statusCommand is `whenlua status`: the daemon, each job file's load
// state, the next runs of every-jobs and the condition errors.
func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "print the daemon, the job files (load time, version, error), the next runs and the silent jobs",
		Flags:  []cli.Flag{jsonFlag()},
		Action: listAction(e, (*whenlua.Client).Status, printStatus),
	}
}

// printStatus writes st for people.
func printStatus(w io.Writer, st whenlua.Status) {
	fmt.Fprintf(w, "daemon:   pid %d, version %s, up %s (since %s)\n", st.PID, st.Version,
		fmtDuration(time.Since(st.Started)), fmtTime(st.Started))
	fmt.Fprintf(w, "home:     %s\n", st.Home)
	fmt.Fprintf(w, "jobs:     %s\n", st.JobsDir)
	fmt.Fprintf(w, "socket:   %s\n", st.Socket)
	if st.Metrics != "" {
		fmt.Fprintf(w, "metrics:  http://%s/metrics\n", st.Metrics)
	}
	fmt.Fprintf(w, "running:  %d\n", st.Running)
	if st.Queued > 0 {
		fmt.Fprintf(w, "queued:   %d\n", st.Queued)
	}
	fmt.Fprintf(w, "files:    %d\n", len(st.Files))
	for _, f := range st.Files {
		state := "ok"
		if f.Error != "" {
			state = "error"
			if f.LoadedAt.IsZero() {
				state = "not loaded"
			}
		}
		hash := f.Hash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		fmt.Fprintf(w, "  %s\t%s\tgeneration %d\tloaded %s\t%s\t%s\n", f.Path, state, f.Generation, fmtTime(f.LoadedAt), plural(f.Jobs, "job"), hash)
		if f.Error != "" {
			fmt.Fprintf(w, "    error at %s: %s\n", fmtTime(f.ErrorAt), oneLine(f.Error))
		}
		if f.HookError != "" {
			fmt.Fprintf(w, "    hook error at %s: %s\n", fmtTime(f.HookErrorAt), oneLine(f.HookError))
		}
		if f.OldRuns > 0 {
			fmt.Fprintf(w, "    %d runs of replaced versions still running\n", f.OldRuns)
		}
	}
	if len(st.Next) > 0 {
		fmt.Fprintln(w, "next runs:")
		for _, j := range st.Next {
			fmt.Fprintf(w, "  %s\t%s\t%s %s\t%s\n", fmtInZone(j.Next, j.Zone), j.Name, j.Kind, j.Spec(), j.Zone)
		}
	}
	if len(st.Pending) > 0 {
		fmt.Fprintln(w, "pending (hold):")
		for _, p := range st.Pending {
			fmt.Fprintf(w, "  %s\t%s\ttrue since %s\n", fmtTime(p.Due), p.Job, fmtTime(p.Since))
		}
	}
	if len(st.Retries) > 0 {
		fmt.Fprintln(w, "retries:")
		for _, r := range st.Retries {
			fmt.Fprintf(w, "  %s\t%s\tattempt %d of the run %d\n", fmtTime(r.At), r.Job, r.Attempt, r.FirstSerial)
		}
	}
	if len(st.Silent) > 0 {
		fmt.Fprintln(w, "silent (no successful run within expect):")
		for _, sj := range st.Silent {
			last := "none known"
			if !sj.LastSuccess.IsZero() {
				last = fmtTime(sj.LastSuccess)
			}
			fmt.Fprintf(w, "  %s\texpect %s\tsilent since %s\tlast success %s\n", sj.Job, fmtDuration(sj.Expect), fmtTime(sj.SilentSince), last)
		}
	}
	if len(st.CondErrors) > 0 {
		fmt.Fprintln(w, "condition errors:")
		for _, ce := range st.CondErrors {
			fmt.Fprintf(w, "  %s\n", oneLine(ce))
		}
	}
	if cs := st.Cluster; cs != nil {
		printCluster(w, *cs)
	}
}

// printCluster writes the cluster part of a node's status: the live nodes,
// the leader, and the nodes whose job files are not the leader's.
func printCluster(w io.Writer, cs whenlua.ClusterStatus) {
	leader := cs.Leader
	if leader == "" {
		leader = "none elected"
	}
	fmt.Fprintf(w, "cluster:  %s, node %s, leader %s\n", cs.Name, cs.Node, leader)
	fmt.Fprintf(w, "etcd:     %s\n", strings.Join(cs.Endpoints, ","))
	fmt.Fprintf(w, "nodes:    %d alive\n", len(cs.Nodes))
	for _, n := range cs.Nodes {
		role := "follower"
		if n.Leader {
			role = "leader"
		}
		files := "same job files as the leader"
		switch {
		case n.Leader:
			files = plural(len(n.Files), "job file")
		case n.Differs:
			files = "JOB FILES DIFFER FROM THE LEADER'S"
		case cs.Leader == "":
			files = plural(len(n.Files), "job file")
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\tpid %d\tup since %s\t%s\n", n.Name, role, n.Addr, n.PID, fmtTime(n.Started), files)
		if n.Differs || n.Leader {
			names := make([]string, 0, len(n.Files))
			for f := range n.Files {
				names = append(names, f)
			}
			sort.Strings(names)
			for _, f := range names {
				fmt.Fprintf(w, "    %s\t%s\n", f, n.Files[f])
			}
		}
	}
}

// fmtInZone writes t as RFC 3339 in the named zone (the local one when the
// name is empty or unknown here), as `whenlua next` does, so that a job's
// time reads in the zone printed beside it.
func fmtInZone(t time.Time, zone string) string {
	loc, err := whenlua.LoadZone(zone)
	if err != nil {
		loc = time.Local
	}
	return t.In(loc).Format(time.RFC3339)
}
