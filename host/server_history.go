package host

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/whenlua/whenlua"
)

// handleHistories streams every kept version of every variable, one JSON
// VarVersion a line, as the store reads them: the daemon never holds the
// whole history in memory. An error after the first line is sent in the
// trailers, as for tail.
func (s *Server) handleHistories(w http.ResponseWriter, r *http.Request) {
	hs, ok := s.svc.(whenlua.HistoryScanner)
	if !ok {
		s.fail(w, r, errors.New("this daemon cannot list every variable's history"))
		return
	}
	s.stream(w, r, func(ctx context.Context, sw *streamWriter) error {
		bw := bufio.NewWriterSize(sw, 64<<10)
		enc := json.NewEncoder(bw)
		if err := hs.ScanHistory(ctx, func(v whenlua.VarVersion) error { return enc.Encode(v) }); err != nil {
			return err
		}
		return bw.Flush()
	})
}
