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
	// RateLimitNext answers the next so many requests 429 with
	// Retry-After, before any rate is drawn: a burst of "retry later"
	// whose size a test knows. It counts down as they are answered.
	RateLimitNext int `json:"rate_limit_next"`
	// LateRate is the fraction of requests held for LateDelay before they
	// are processed, then answered: a late commit. With LateDelay beyond
	// the caller's timeout, the caller gives up not knowing the outcome,
	// a status inquiry meanwhile finds nothing, and the money moves
	// afterwards all the same (DOKU does not undo work because its caller
	// hung up).
	LateRate  float64       `json:"late_rate"`
	LateDelay time.Duration `json:"late_delay"`
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
	RateLimitNext       int      `json:"rate_limit_next,omitempty"`
	LateRate            float64  `json:"late_rate,omitempty"`
	LateDelay           string   `json:"late_delay,omitempty"`
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
	return json.Marshal(faultsJSON{Latency: str(f.Latency), Jitter: str(f.Jitter), ErrorRate: f.ErrorRate, DropRate: f.DropRate,
		RateLimitRate: f.RateLimitRate, RetryAfter: str(f.RetryAfter), RateLimitNext: f.RateLimitNext, LateRate: f.LateRate, LateDelay: str(f.LateDelay),
		NotifyDropRate: f.NotifyDropRate, NotifyDuplicateRate: f.NotifyDuplicateRate, NotifyDelay: str(f.NotifyDelay), Ops: f.Ops})
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
		RateLimitRate: j.RateLimitRate, RetryAfter: dur("retry_after", j.RetryAfter), RateLimitNext: j.RateLimitNext,
		LateRate: j.LateRate, LateDelay: dur("late_delay", j.LateDelay), NotifyDropRate: j.NotifyDropRate,
		NotifyDuplicateRate: j.NotifyDuplicateRate, NotifyDelay: dur("notify_delay", j.NotifyDelay), Ops: j.Ops}
	return err
}

// faultBox holds the current faults and counts those injected; safe for
// concurrent use.
type faultBox struct {
	mu       sync.Mutex
	f        Faults
	injected [faultKinds]int64
}

func (b *faultBox) count(ft fault) {
	b.mu.Lock()
	b.injected[ft]++
	b.mu.Unlock()
}

func (b *faultBox) get() Faults {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.f
}

// takeRateLimit counts down RateLimitNext, and reports whether this
// request is one of the burst.
func (b *faultBox) takeRateLimit() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f.RateLimitNext <= 0 {
		return false
	}
	b.f.RateLimitNext--
	return true
}

func (b *faultBox) set(f Faults) {
	b.mu.Lock()
	b.f = f
	b.mu.Unlock()
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// FaultsInjected counts the faults injected so far, by kind: "error",
// "rate_limit", "drop" and "late" (as the rates of Faults name them).
// Kinds not injected yet count 0.
func (s *Server) FaultsInjected() map[string]int64 {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := map[string]int64{}
	for ft := faultError; ft < faultKinds; ft++ {
		out[ft.String()] = s.faults.injected[ft]
	}
	return out
}

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
	faultLate
	faultKinds // how many there are
)

func (ft fault) String() string {
	switch ft {
	case faultError:
		return "error"
	case faultRateLimit:
		return "rate_limit"
	case faultDrop:
		return "drop"
	case faultLate:
		return "late"
	}
	return "none"
}

// draw decides the fate of one request to op and sleeps its latency.
func (s *Server) draw(op doku.Op) (fault, Faults) {
	f := s.faults.get()
	if len(f.Ops) > 0 && !slices.Contains(f.Ops, op.String()) {
		return faultNone, f
	}
	if d := f.Latency + time.Duration(rand.Int64N(int64(f.Jitter)+1)); d > 0 {
		time.Sleep(d)
	}
	ft, x := faultNone, rand.Float64()
	switch {
	case s.faults.takeRateLimit():
		ft = faultRateLimit
	case x < f.ErrorRate:
		ft = faultError
	case x < f.ErrorRate+f.RateLimitRate:
		ft = faultRateLimit
	case x < f.ErrorRate+f.RateLimitRate+f.DropRate:
		ft = faultDrop
	case x < f.ErrorRate+f.RateLimitRate+f.DropRate+f.LateRate:
		ft = faultLate
	}
	if ft != faultNone {
		s.faults.count(ft)
	}
	return ft, f
}

// injectBefore answers a request that a fault stops before processing, and
// reports whether it did. A late commit is held here for LateDelay, then
// processed: the request's body is still in the connection's buffers,
// and the ledger's work is not tied to the request's context.
func injectBefore(w http.ResponseWriter, op doku.Op, ft fault, f Faults) bool {
	switch ft {
	case faultLate:
		time.Sleep(f.LateDelay)
		return false
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
