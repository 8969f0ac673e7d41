package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
)

// Faults are the misbehaviours the sandbox injects into DOKU's endpoints,
// set by flags or at runtime with POST /sandbox/faults. The zero value
// injects none.
type Faults struct {
	// Latency delays every answer by Latency plus up to Jitter.
	Latency time.Duration `json:"latency"`
	Jitter  time.Duration `json:"jitter"`
	// ErrorRate is the fraction of requests answered 500 before anything
	// is processed.
	ErrorRate float64 `json:"error_rate"`
	// DropRate is the fraction of requests processed (the money moved) and
	// then answered with a dropped connection: the caller cannot tell.
	DropRate float64 `json:"drop_rate"`
	// RateLimitRate is the fraction answered 429 with Retry-After.
	RateLimitRate float64       `json:"rate_limit_rate"`
	RetryAfter    time.Duration `json:"retry_after"`
	// Notifications: the fraction never sent (DOKU thinks they were), the
	// fraction sent twice, and a delay before the first attempt.
	NotifyDropRate      float64       `json:"notify_drop_rate"`
	NotifyDuplicateRate float64       `json:"notify_duplicate_rate"`
	NotifyDelay         time.Duration `json:"notify_delay"`
	// Ops limits the faults to these operations (doku.Op names such as
	// "refund"); empty means every operation.
	Ops []string `json:"ops,omitempty"`
}

// faultsJSON is Faults with durations as Go duration strings ("20ms"), as
// POST /sandbox/faults takes and GET /sandbox/faults shows them.
type faultsJSON struct {
	Latency             string   `json:"latency,omitempty"`
	Jitter              string   `json:"jitter,omitempty"`
	ErrorRate           float64  `json:"error_rate,omitempty"`
	DropRate            float64  `json:"drop_rate,omitempty"`
	RateLimitRate       float64  `json:"rate_limit_rate,omitempty"`
	RetryAfter          string   `json:"retry_after,omitempty"`
	NotifyDropRate      float64  `json:"notify_drop_rate,omitempty"`
	NotifyDuplicateRate float64  `json:"notify_duplicate_rate,omitempty"`
	NotifyDelay         string   `json:"notify_delay,omitempty"`
	Ops                 []string `json:"ops,omitempty"`
}

// MarshalJSON writes durations as strings such as "20ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	str := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	return json.Marshal(faultsJSON{str(f.Latency), str(f.Jitter), f.ErrorRate, f.DropRate, f.RateLimitRate,
		str(f.RetryAfter), f.NotifyDropRate, f.NotifyDuplicateRate, str(f.NotifyDelay), f.Ops})
}

// UnmarshalJSON reads durations as strings such as "20ms".
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var err error
	dur := func(name, s string) time.Duration {
		if s == "" || err != nil {
			return 0
		}
		d, e := time.ParseDuration(s)
		if e != nil || d < 0 {
			err = fmt.Errorf("%s: %q is not a duration such as \"20ms\"", name, s)
		}
		return d
	}
	*f = Faults{Latency: dur("latency", j.Latency), Jitter: dur("jitter", j.Jitter), ErrorRate: j.ErrorRate, DropRate: j.DropRate,
		RateLimitRate: j.RateLimitRate, RetryAfter: dur("retry_after", j.RetryAfter), NotifyDropRate: j.NotifyDropRate,
		NotifyDuplicateRate: j.NotifyDuplicateRate, NotifyDelay: dur("notify_delay", j.NotifyDelay), Ops: j.Ops}
	return err
}

// faultBox holds the current faults; safe for concurrent use.
type faultBox struct {
	mu sync.Mutex
	f  Faults
}

func (b *faultBox) get() Faults {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.f
}

func (b *faultBox) set(f Faults) {
	b.mu.Lock()
	b.f = f
	b.mu.Unlock()
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var f Faults
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&f); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.faults.set(f)
	}
	writeJSON(w, http.StatusOK, s.faults.get())
}

// fault is what happens to one request.
type fault int

const (
	faultNone fault = iota
	faultError
	faultRateLimit
	faultDrop
)

// draw decides the fate of one request to op and sleeps its latency.
func (s *Server) draw(op doku.Op) (fault, Faults) {
	f := s.faults.get()
	if len(f.Ops) > 0 && !slices.Contains(f.Ops, op.String()) {
		return faultNone, f
	}
	if d := f.Latency + time.Duration(rand.Int64N(int64(f.Jitter)+1)); d > 0 {
		time.Sleep(d)
	}
	x := rand.Float64()
	switch {
	case x < f.ErrorRate:
		return faultError, f
	case x < f.ErrorRate+f.RateLimitRate:
		return faultRateLimit, f
	case x < f.ErrorRate+f.RateLimitRate+f.DropRate:
		return faultDrop, f
	}
	return faultNone, f
}

// injectBefore answers a request that a fault stops before processing, and
// reports whether it did.
func injectBefore(w http.ResponseWriter, op doku.Op, ft fault, f Faults) bool {
	switch ft {
	case faultError:
		a := fail(op, 500, "00", "General Error")
		writeRaw(w, a.code.HTTPStatus(), a.bytes())
		return true
	case faultRateLimit:
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
		a := fail(op, 429, "00", "Too Many Requests")
		writeRaw(w, a.code.HTTPStatus(), a.bytes())
		return true
	}
	return false
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	// No hijacking (HTTP/2): abort the handler, which resets the stream.
	panic(http.ErrAbortHandler)
}
