package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
)

// Notification ingestion, end to end: genuine notifications, each a new
// one (its own partnerReferenceNo, so a new inbox row), posted over real
// HTTP to a running daemon whose state is a real file (WAL,
// synchronous=FULL, as state.OpenWith opens it). The daemon's cycles
// process the inbox meanwhile, as they would in production. Signing is
// DOKU's cost, so the requests are signed before the clock starts; the
// daemon's verification (token and signature) is measured.

// ingest is a running daemon and b.N signed notifications for it.
type ingest struct {
	r      *running
	url    string
	client *http.Client
	bodies [][]byte
	heads  []http.Header
}

func newIngest(b *testing.B) *ingest {
	b.Helper()
	e := newEnv(b, envOptions{})
	r := e.start(daemonOptions{})
	n := e.notifier(r.url)
	token, err := n.Token(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	in := &ingest{
		r:      r,
		url:    r.url + NotificationPath,
		client: &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}},
		bodies: make([][]byte, b.N),
		heads:  make([]http.Header, b.N),
	}
	b.Cleanup(in.client.CloseIdleConnections)
	run := time.Now().UnixNano()
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < b.N; i += workers {
				body := notificationBody(b, doku.Notification{
					OriginalPartnerReferenceNo: fmt.Sprintf("BENCH%d-%08d", run, i), OriginalReferenceNo: fmt.Sprintf("REF%08d", i),
					LatestTransactionStatus: doku.TxSuccess, TransactionStatusDesc: "Success", Amount: doku.NewAmount(money.Amount(15000000)),
				})
				req, err := n.Request(context.Background(), token, fmt.Sprintf("%d%08d", run, i), body)
				if err != nil {
					b.Error(err)
					return
				}
				in.bodies[i], in.heads[i] = body, req.Header
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return in
}

// recorded checks that every notification sent was a new inbox row.
func (in *ingest) recorded(b *testing.B) {
	b.Helper()
	if got, _ := metric(in.r.scrape(b), "ddctl_notifications_total", "result", "accepted"); got != float64(b.N) {
		b.Fatalf(`ddctl_notifications_total{result="accepted"}=%v, want %d`, got, b.N)
	}
}

// post sends notification i and returns the HTTP status (0: no answer).
func (in *ingest) post(i int) int {
	req, err := http.NewRequest(http.MethodPost, in.url, bytes.NewReader(in.bodies[i]))
	if err != nil {
		return 0
	}
	req.Header = in.heads[i]
	resp, err := in.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// reportLatency reports percentiles of lat in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration, withMax bool) {
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(q*float64(len(lat))+0.5) - 1
		return float64(lat[min(max(i, 0), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	if withMax {
		b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	}
}

// BenchmarkNotificationIngest is a closed loop: 8 senders, each posting
// its next notification as soon as the last one is answered.
func BenchmarkNotificationIngest(b *testing.B) {
	in := newIngest(b)
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var bad atomic.Int64
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) - 1)
			start := time.Now()
			if in.post(i) != http.StatusOK {
				bad.Add(1)
			}
			lat[i] = time.Since(start)
		}
	})
	b.StopTimer()
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d of %d notifications not answered 200", n, b.N)
	}
	in.recorded(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	reportLatency(b, lat, false)
}

// BenchmarkNotificationIngestAt1000 is an open loop: notifications are
// offered at 1,000 per second whatever the answers, each on its own
// goroutine at its scheduled time, and latency runs from that time to
// the answer, so that queueing counts.
func BenchmarkNotificationIngestAt1000(b *testing.B) {
	const rate = 1000
	in := newIngest(b)
	lat := make([]time.Duration, b.N)
	var bad atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		at := start.Add(time.Duration(i) * time.Second / rate)
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // the load generator's pacing, not a wait for the daemon
		}
		wg.Go(func() {
			if in.post(i) != http.StatusOK {
				bad.Add(1)
			}
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	reportLatency(b, lat, true)
	b.ReportMetric(float64(bad.Load()), "non2xx")
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d of %d notifications not answered 2xx at %d/s", n, b.N, rate)
	}
	in.recorded(b)
}

// BenchmarkNotificationUnderScrapes offers notifications at 200 per second
// in four phases, alternating: quiet, then 64 scrapers of the admin
// listener's /metrics in a closed loop, quiet, scraped. It reports the p99
// latency of each kind of phase and their ratio: what a scrape costs DOKU's
// notifications, which share nothing with it now but the process and the
// state. (The pending counts are read at most every 5 s, as in
// production; -uncached renders and counts at every scrape, as before.)
func BenchmarkNotificationUnderScrapes(b *testing.B) {
	for _, uncached := range []bool{false, true} {
		name := "cached"
		if uncached {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) { benchUnderScrapes(b, uncached) })
	}
}

func benchUnderScrapes(b *testing.B, uncached bool) {
	const rate, scrapers = 200, 64
	in := newIngest(b)
	if !uncached {
		in.r.d.metrics.pending.countsFor, in.r.d.metrics.page.every = countsFor, metricsEvery
	}
	lat := make([]time.Duration, b.N)
	var bad atomic.Int64
	phase := func(i int) int { return i * 4 / b.N } // 0 and 2 quiet, 1 and 3 scraped
	var scrapes atomic.Int64
	scraping := make(chan struct{})
	var stop atomic.Bool
	var sw sync.WaitGroup
	sc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: scrapers}}
	defer sc.CloseIdleConnections()
	for range scrapers {
		sw.Go(func() {
			for range scraping {
				for !stop.Load() {
					if resp, err := sc.Get(in.r.admin + "/metrics"); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						scrapes.Add(1)
					}
				}
			}
		})
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	current := 0
	for i := range b.N {
		if p := phase(i); p != current {
			wg.Wait() // each phase's answers are its own
			current = p
			if p%2 == 1 {
				stop.Store(false)
				for range scrapers {
					scraping <- struct{}{}
				}
			} else {
				stop.Store(true)
			}
			start = time.Now().Add(-time.Duration(i) * time.Second / rate)
		}
		at := start.Add(time.Duration(i) * time.Second / rate)
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // pacing, not a wait for the daemon
		}
		wg.Go(func() {
			if in.post(i) != http.StatusOK {
				bad.Add(1)
			}
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	stop.Store(true)
	close(scraping)
	sw.Wait()
	b.StopTimer()
	if n := bad.Load(); n > 0 {
		b.Fatalf("%d of %d notifications not answered 200", n, b.N)
	}
	var quiet, scraped []time.Duration
	for i, l := range lat {
		if phase(i)%2 == 0 {
			quiet = append(quiet, l)
		} else {
			scraped = append(scraped, l)
		}
	}
	p99 := func(l []time.Duration) float64 {
		if len(l) == 0 {
			return 0 // b.N under 4: the first, sizing run
		}
		slices.Sort(l)
		return float64(l[min(len(l)-1, len(l)*99/100)]) / float64(time.Millisecond)
	}
	q, s := p99(quiet), p99(scraped)
	b.ReportMetric(q, "quiet-p99-ms")
	b.ReportMetric(s, "scraped-p99-ms")
	if q > 0 {
		b.ReportMetric(s/q, "ratio")
	}
	b.ReportMetric(float64(scrapes.Load()), "scrapes")
}
