package whenlua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

var _ HistoryScanner = (*Client)(nil)

// ScanHistory implements HistoryScanner: the daemon streams every kept
// version of every variable, and fn sees each as it is decoded.
func (c *Client) ScanHistory(ctx context.Context, fn func(VarVersion) error) error {
	resp, err := c.request(ctx, http.MethodGet, "/histories", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var v VarVersion
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// The stream ended inside a version: the daemon's error,
				// if it sent one, is in the trailers, which follow the body.
				io.Copy(io.Discard, resp.Body)
				if msg := resp.Trailer.Get(TailErrorTrailer); msg != "" {
					return RemoteError(resp.Trailer.Get(TailKindTrailer), msg)
				}
			}
			return fmt.Errorf("read history: %w", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if msg := resp.Trailer.Get(TailErrorTrailer); msg != "" {
		return RemoteError(resp.Trailer.Get(TailKindTrailer), msg)
	}
	return nil
}
