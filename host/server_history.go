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
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	sw := &streamWriter{w: w, rc: http.NewResponseController(w)}
	bw := bufio.NewWriterSize(sw, 64<<10)
	enc := json.NewEncoder(bw)
	err := hs.ScanHistory(ctx, func(v whenlua.VarVersion) error { return enc.Encode(v) })
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err != nil && !sw.wrote:
		s.fail(w, r, err)
	case err != nil && r.Context().Err() == nil:
		if s.streams.Err() != nil {
			err = errors.New("the daemon is stopping")
		}
		w.Header().Set(whenlua.TailErrorTrailer, oneLine(err.Error()))
		w.Header().Set(whenlua.TailKindTrailer, whenlua.ErrorKind(err))
	case !sw.wrote:
		w.WriteHeader(http.StatusOK)
	}
}
