// Command whenlua-bench measures a real whenlua daemon against the
// project's performance targets and prints one table of figures, baselines
// measured in the same run, ratios and targets.
//
//	go run ./cmd/whenlua-bench [-quick] [-cluster [-etcd URLS]] [-only ROWS] [-bin PATH] [-dir DIR]
//
// With -cluster it also measures cluster mode (rows C1, C2): nodes on a
// 1-member and a 3-member etcd it starts itself on loopback (embedded
// etcd servers), or on the etcd given with -etcd.
//
// It builds the whenlua binary (or takes -bin), starts daemons with
// `whenlua daemon start` in homes under a fresh temporary directory, drives
// them through whenlua.Dial and the job files it writes, stops them and
// removes the directory at the end, also on an error or an interrupt.
// docs/benchmarks.md describes each row.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config holds the sizes and durations of one mode (quick or full).
type config struct {
	quick bool

	startIters  int           // P1: triggers per side
	bigJobs     int           // P2: the largest number of loaded when-jobs
	setIters    int           // P2: sets per size
	edits       int           // P3: edits measured
	rounds      int           // P4: rounds of baseline, 1 client, 8 clients
	roundLength time.Duration // P4: length of each measurement in a round
	settle      time.Duration // P5-P7: wait after loading before the window
	window      time.Duration // P6/P7: measurement window
	kills       int           // C2: leader kills
}

func quickConfig() config {
	return config{quick: true, startIters: 60, bigJobs: 20000, setIters: 150, edits: 10,
		rounds: 3, roundLength: 500 * time.Millisecond, settle: 2 * time.Second, window: 10 * time.Second, kills: 5}
}

func fullConfig() config {
	return config{startIters: 500, bigJobs: 100000, setIters: 1000, edits: 50,
		rounds: 5, roundLength: 2 * time.Second, settle: 10 * time.Second, window: 60 * time.Second, kills: 10}
}

func main() {
	quick := flag.Bool("quick", false, "smaller sizes and shorter windows (under a minute)")
	bin := flag.String("bin", "", "the whenlua binary to run (default: build ./cmd/whenlua)")
	dir := flag.String("dir", "", "where to create the temporary homes (default: $TMPDIR)")
	only := flag.String("only", "", "run only the measurements of these rows, a comma-separated list such as P4 or P1,P6 (C1,C2 need -cluster)")
	withCluster := flag.Bool("cluster", false, "also measure cluster mode (rows C1, C2) on etcds the bench starts, or on -etcd")
	etcd := flag.String("etcd", "", "with -cluster: comma-separated client URLs of an existing etcd to use instead")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: whenlua-bench [-quick] [-cluster [-etcd URLS]] [-only ROWS] [-bin PATH] [-dir DIR]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *etcd != "" && !*withCluster {
		fmt.Fprintf(os.Stderr, "whenlua-bench: -etcd needs -cluster\n")
		os.Exit(2)
	}
	want, err := parseOnly(*only, *withCluster)
	if err != nil {
		fmt.Fprintf(os.Stderr, "whenlua-bench: %v\n", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg, want, *withCluster, *bin, *dir, *etcd); err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(os.Stderr, "whenlua-bench: %v\n", err)
		os.Exit(1)
	}
}

// steps are the measurements, in the order they run, with the rows each
// one prints.
var steps = []struct {
	name string
	rows []string
	f    func(context.Context, *bench, config) ([]row, error)
}{
	{"idle daemons: RSS, every-second lateness, idle CPU, schedule cost (P5-P7, P9)", []string{"P5", "P6", "P7", "P9"}, benchIdle},
	{"set to job started (P1)", []string{"P1"}, benchStart},
	{"set with many loaded jobs (P2)", []string{"P2"}, benchLoaded},
	{"edit to active (P3)", []string{"P3"}, benchEdit},
	{"durable sets per second (P4)", []string{"P4"}, benchThroughput},
	{"the command a user types (P8)", []string{"P8"}, benchCLI},
}

// clusterSteps are the measurements of -cluster, after steps.
var clusterSteps = []struct {
	name string
	rows []string
	f    func(context.Context, *bench, config) ([]row, error)
}{
	{"cluster sets per second and latency (C1)", []string{"C1"}, benchClusterSets},
	{"cluster failover (C2)", []string{"C2"}, benchFailover},
}

// parseOnly reads the -only list; nil means every row.
func parseOnly(s string, withCluster bool) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	known := map[string]bool{}
	for _, st := range steps {
		for _, k := range st.rows {
			known[k] = true
		}
	}
	for _, st := range clusterSteps {
		for _, k := range st.rows {
			known[k] = withCluster
		}
	}
	want := map[string]bool{}
	for _, k := range strings.Split(s, ",") {
		k = strings.ToUpper(strings.TrimSpace(k))
		if !known[k] {
			if strings.HasPrefix(k, "C") && !withCluster {
				return nil, fmt.Errorf("-only: row %q needs -cluster", k)
			}
			return nil, fmt.Errorf("-only: unknown row %q (the rows are P1 to P9, and C1, C2 with -cluster)", k)
		}
		want[k] = true
	}
	return want, nil
}

// run sets up the bench, runs every measurement and prints the table. The
// daemons it started are stopped and the temporary directory removed before
// it returns.
func run(ctx context.Context, cfg config, want map[string]bool, withCluster bool, bin, dir, etcd string) (err error) {
	start := time.Now()
	load0 := loadAverage()
	b, err := newBench(ctx, bin, dir)
	if err != nil {
		return err
	}
	b.etcd = etcd
	defer func() {
		if cerr := b.close(); err == nil {
			err = cerr
		}
	}()
	var rows []row
	all := steps
	if withCluster {
		all = append(slices.Clone(steps), clusterSteps...)
	}
	for _, s := range all {
		if want != nil && !slices.ContainsFunc(s.rows, func(k string) bool { return want[k] }) {
			continue
		}
		b.logf("%s", s.name)
		rs, err := s.f(ctx, b, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for _, r := range rs {
			if want == nil || want[r.key] {
				rows = append(rows, r)
			}
		}
		if err := b.stopAll(); err != nil {
			return err
		}
	}
	sortRows(rows)
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	fmt.Printf("whenlua-bench (%s mode), %s\n\n", mode, machine(b.root))
	printTable(os.Stdout, rows)
	fmt.Printf("\nwall time %s; 1-minute load average %s at the start, %s at the end\n",
		time.Since(start).Round(100*time.Millisecond), load0, loadAverage())
	return nil
}
