package persist

import (
	"fmt"

	"github.com/whenlua/whenlua"
)

// DropEvaluations deletes the kept evaluations of jobs (`whenlua why`), in
// transactions of at most trimChunk keys. The daemon drops those of jobs
// that left long ago, so that jobs renamed or generated over time do not
// pile up rings no one asks for.
func (s *Store) DropEvaluations(jobs []string) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("drop evaluations: %w", err)
	}
	defer s.mu.RUnlock()
	per := trimChunk / whenlua.EvalKeep
	for len(jobs) > 0 {
		chunk := jobs[:min(len(jobs), per)]
		jobs = jobs[len(chunk):]
		if err := s.dropEvals(chunk); err != nil {
			return fmt.Errorf("drop evaluations: %w", err)
		}
	}
	return nil
}

// dropEvals deletes the rings of jobs in one transaction.
func (s *Store) dropEvals(jobs []string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for _, job := range jobs {
		for slot := range uint64(whenlua.EvalKeep) {
			if err := txn.Delete(evalKey(job, slot)); err != nil {
				return err
			}
		}
	}
	return s.commitTxn(txn)
}
