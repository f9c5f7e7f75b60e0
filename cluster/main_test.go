package cluster

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/whenlua/whenlua/internal/etcdtest"
)

// sharedEtcd is one etcd member for the tests that need no cluster of
// their own; each store on it has a cluster name of its own.
var sharedEtcd *etcdtest.Cluster

// TestMain starts the shared etcd for the package's tests and checks, once
// they passed, that no goroutine is left running.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "whenlua-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedEtcd, err = etcdtest.Launch(etcdtest.Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	sharedEtcd.Close()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
