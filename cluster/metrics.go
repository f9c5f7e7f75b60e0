package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
)

// nodeMetrics are a node's own Prometheus metrics, on a registry of their
// own that lives as long as the node, across its terms as leader. The
// engine's metrics are those of the current term only: each term's engine
// has its own registry, and a new term's counters start again at 0.
type nodeMetrics struct {
	reg       *prometheus.Registry
	terms     prometheus.Counter
	forwarded *prometheus.CounterVec // result
}

// Results of a forwarded call, the values of the result label of
// whenlua_cluster_forwarded_calls_total.
const (
	forwardAnswered = "answered" // the leader's engine answered, with a result or an error of the call
	forwardFailed   = "failed"   // no leader answered: none elected in time, or it stopped answering
)

func newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		terms: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "whenlua_cluster_terms_total",
			Help: "Times this node was elected leader.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenlua_cluster_forwarded_calls_total",
			Help: "Calls to this node sent on to the leader, by result (answered, failed).",
		}, []string{"result"}),
	}
	for _, r := range []string{forwardAnswered, forwardFailed} {
		m.forwarded.WithLabelValues(r)
	}
	m.reg.MustRegister(m.terms, m.forwarded)
	return m
}

// countForward counts a call that this node, not leading, sent on (or
// meant to send on) to the leader, and that ended with err.
func (m *nodeMetrics) countForward(err error) {
	r := forwardFailed
	if err == nil || whenlua.IsRemote(err) && !errors.Is(err, whenlua.ErrNotLeader) {
		r = forwardAnswered
	}
	m.forwarded.WithLabelValues(r).Inc()
}

var (
	descLeader = prometheus.NewDesc("whenlua_cluster_leader",
		"1 while this node leads the cluster (its engine's metrics are then served beside), else 0.", nil, nil)
	descNodes = prometheus.NewDesc("whenlua_cluster_nodes",
		"Live nodes of the cluster, as etcd shows them at the scrape.", nil, nil)
)

// nodeCollector gives the gauges a scrape reads: whether the node leads
// (as it did when the scrape took its engine), and the live nodes, read
// from etcd under the scrape's context.
type nodeCollector struct {
	n       *Node
	ctx     context.Context
	leading bool
}

// scrapeReadTimeout bounds a scrape's read of etcd.
const scrapeReadTimeout = 5 * time.Second

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLeader
	ch <- descNodes
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	leader := 0.0
	if c.leading {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	ctx, cancel := context.WithTimeout(c.ctx, scrapeReadTimeout)
	defer cancel()
	resp, err := c.n.cli.Get(ctx, c.n.key("nodes")+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descNodes, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(resp.Count))
}

// MetricsGatherer gathers the node's metrics for one scrape, under ctx
// (the scrape's): its own, and while it leads, its engine's of the
// current term. A term that ends during the scrape is not an error: the
// node is gathered again, as a follower.
func (n *Node) MetricsGatherer(ctx context.Context) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var (
			mfs []*dto.MetricFamily
			err error
		)
		for range 2 {
			eng := n.currentEngine()
			scrape := prometheus.NewRegistry()
			scrape.MustRegister(nodeCollector{n: n, ctx: ctx, leading: eng != nil})
			gs := prometheus.Gatherers{n.metrics.reg, scrape}
			if eng != nil {
				gs = append(gs, eng.MetricsGatherer(ctx))
			}
			mfs, err = gs.Gather()
			if err == nil || eng == nil || n.currentEngine() == eng {
				break
			}
		}
		return mfs, err
	})
}

// currentEngine is this node's engine while it leads, else nil.
func (n *Node) currentEngine() *host.Engine {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.engine
}
