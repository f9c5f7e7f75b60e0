package host

// The dependency index: which when-jobs a set of a variable must evaluate
// (index, depsAll), kept as jobs load, read names, are suspended and leave;
// and the snapshots of the values a job read, which its evaluation state
// keeps.

import (
	"maps"

	"github.com/whenlua/whenlua"
)

// indexJob enters a when-job into the dependency index.
func (st *state) indexJob(j *job) {
	j.deps = map[string]struct{}{}
	j.observe = j.lj.DepsAll && j.lj.DepsByReads
	j.all = j.lj.DepsAll && !j.observe
	if j.all {
		st.depsAll[j] = struct{}{}
		return
	}
	for _, name := range j.lj.Deps {
		j.deps[name] = struct{}{}
	}
	// Names read in earlier evaluations (kept in the persisted snapshot) stay dependencies.
	if s := st.states[j.name]; s != nil && s.Cond == j.lj.Cond {
		for name := range s.Snapshot {
			j.deps[name] = struct{}{}
		}
	}
	for name := range j.deps {
		st.indexAdd(name, j)
	}
	if j.observe {
		j.stale = true
		st.depsAll[j] = struct{}{}
	}
}

// indexAdd records that j may read name.
func (st *state) indexAdd(name string, j *job) {
	set := st.index[name]
	if set == nil {
		set = map[*job]struct{}{}
		st.index[name] = set
	}
	set[j] = struct{}{}
}

// unindexJob removes a when-job from the dependency index.
func (st *state) unindexJob(j *job) {
	delete(st.depsAll, j)
	for name := range j.deps {
		if set := st.index[name]; set != nil {
			delete(set, j)
			if len(set) == 0 {
				delete(st.index, name)
			}
		}
	}
}

// mayHaveChanged is called after Lua code of g other than a side-effect
// free condition ran (a hook, a condition the analysis cannot see into):
// the names g's observed jobs compute may differ now, so each is evaluated
// on every set again until its next evaluation reads them anew.
func (st *state) mayHaveChanged(g *generation) {
	if g.fresh == 0 {
		return
	}
	for _, j := range g.jobs {
		if j.observe && !j.stale && !j.suspended {
			j.stale = true
			st.depsAll[j] = struct{}{}
		}
	}
	g.fresh = 0
}

// resumeSuspended puts the suspended when-jobs back in the index
// (`whenlua reload`).
func (st *state) resumeSuspended() {
	for _, j := range st.jobs {
		if j.suspended && !j.gen.retired {
			j.suspended, j.overLimit = false, 0
			st.indexJob(j)
			delete(st.condErrs, j.name)
		}
	}
}

// queueEval asks for the fixpoint over the when-jobs that may read any of
// names, for trig.
func (st *state) queueEval(names []string, trig whenlua.Trigger) {
	seen := map[*job]struct{}{}
	var cands []*job
	for _, n := range names {
		for j := range st.index[n] {
			if _, ok := seen[j]; !ok {
				seen[j] = struct{}{}
				cands = append(cands, j)
			}
		}
	}
	for j := range st.depsAll {
		if _, ok := seen[j]; !ok {
			seen[j] = struct{}{}
			cands = append(cands, j)
		}
	}
	if len(cands) > 0 {
		st.step.evalQueue = append(st.step.evalQueue, evalBatch{cands, trig})
	}
}

// snapshot takes the current values of the names j may read.
func (st *state) snapshot(j *job) map[string]whenlua.Value {
	if j.all {
		return maps.Clone(st.vars)
	}
	snap := make(map[string]whenlua.Value, len(j.deps))
	for name := range j.deps {
		snap[name] = st.vars[name] // Nil when unset: still a dependency
	}
	return snap
}

// snapshotIs reports whether snap equals what snapshot(j) would take now,
// without taking it: most evaluations change no snapshot.
func (st *state) snapshotIs(j *job, snap map[string]whenlua.Value) bool {
	if j.all {
		return maps.EqualFunc(st.vars, snap, whenlua.Value.Equal)
	}
	if len(snap) != len(j.deps) {
		return false
	}
	for name := range j.deps {
		if v, ok := snap[name]; !ok || !v.Equal(st.vars[name]) {
			return false
		}
	}
	return true
}
