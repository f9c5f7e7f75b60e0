package luaapi

import (
	"errors"
	"fmt"
	"math"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua/lualib"
)

// Retry is a job's retry option: a run that fails (a non-zero exit, a
// signal, a timeout; not a refusal by pre) is started again after Delay,
// then Delay*Backoff, Delay*Backoff², ..., until Attempts runs were made.
type Retry struct {
	Attempts int           // in all, the first included
	Delay    time.Duration // before the second attempt
	Backoff  float64       // each further delay is the previous one times Backoff
}

// MaxRetryAttempts bounds the attempts option.
const MaxRetryAttempts = 100

// After returns the delay before attempt n+1 when attempt n failed, and
// false when n was the last attempt.
func (r *Retry) After(n int) (time.Duration, bool) {
	if r == nil || n >= r.Attempts {
		return 0, false
	}
	d := float64(r.Delay) * math.Pow(r.Backoff, float64(n-1))
	if d >= float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(d), true
}

// retryOption reads retry = {attempts = N, delay = D, backoff = F}:
// attempts 2 to MaxRetryAttempts, delay a duration (default 30s), backoff
// at least 1 (default 1).
func retryOption(v lua.LValue) (*Retry, error) {
	t, err := lualib.AsTable(v, "option retry", `a table such as {attempts = 3, delay = "30s", backoff = 2}`)
	if err != nil {
		return nil, err
	}
	r := &Retry{Delay: 30 * time.Second, Backoff: 1}
	err = lualib.Fields(t, func(k, v lua.LValue) error {
		var err error
		switch k {
		case lua.LString("attempts"):
			n, ok := v.(lua.LNumber)
			if !ok || float64(n) != math.Trunc(float64(n)) || n < 2 || n > MaxRetryAttempts {
				return fmt.Errorf("option retry: attempts must be a whole number from 2 to %d (the first run included), not %s", MaxRetryAttempts, v.String())
			}
			r.Attempts = int(n)
		case lua.LString("delay"):
			r.Delay, err = lualib.OptDuration("retry.delay", v)
		case lua.LString("backoff"):
			n, ok := v.(lua.LNumber)
			if !ok || !(n >= 1) || math.IsInf(float64(n), 0) {
				return fmt.Errorf("option retry: backoff must be a number of at least 1, not %s", v.String())
			}
			r.Backoff = float64(n)
		default:
			return fmt.Errorf("option retry: unknown key %s (want attempts, delay or backoff)", k.String())
		}
		return err
	})
	if err == nil && r.Attempts == 0 {
		err = errors.New("option retry: attempts is missing (e.g. {attempts = 3})")
	}
	return r, err
}
