// Command mobius-load drives a Mobius Secrets server over HTTP at a given
// concurrency for a bounded time and request count, and prints requests/s,
// latency percentiles and errors for reads (get, get-version, list) and
// writes (create, rotate).
//
// With -self it starts its own server (the real handler on the embedded
// store, in a temporary folder) and a baseline server (bare net/http and
// bbolt doing one read per request), so the two can be compared on one
// machine:
//
//	go run ./pkg/internal/bench/mobius-load -self -c 32 -d 10s
//	go run ./pkg/internal/bench/mobius-load -endpoint http://127.0.0.1:8080 -api-key "$MOBIUS_API_KEY" -project default -mode read
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mobius-secrets/mobius/pkg/internal/bench"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mobius-load:", err)
		os.Exit(1)
	}
}

type config struct {
	endpoint, apiKey, project, mode string
	self                            bool
	c, n, seed                      int
	d                               time.Duration
}

// Result is one mode's figures.
type Result struct {
	Mode          string
	Requests      int
	Errors        int
	Seconds       float64
	P50, P90, P99 time.Duration
}

func (r Result) RPS() float64 { return float64(r.Requests) / r.Seconds }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("mobius-load", flag.ContinueOnError)
	fs.StringVar(&cfg.endpoint, "endpoint", "", "server to drive (not with -self)")
	fs.StringVar(&cfg.apiKey, "api-key", os.Getenv("MOBIUS_API_KEY"), "API key with secrets:read and secrets:write")
	fs.StringVar(&cfg.project, "project", "default", "project")
	fs.StringVar(&cfg.mode, "mode", "read,write", "comma-separated: read (get, get-version, list), get, write (create, rotate), baseline (needs -self)")
	fs.BoolVar(&cfg.self, "self", false, "start the real handler on a temporary embedded store, and the baseline server")
	fs.IntVar(&cfg.c, "c", 32, "concurrent clients")
	fs.DurationVar(&cfg.d, "d", 10*time.Second, "duration of each mode")
	fs.IntVar(&cfg.n, "n", 1_000_000, "at most this many requests per mode")
	fs.IntVar(&cfg.seed, "seed", 100, "secrets to create before measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.c < 1 || cfg.d <= 0 || cfg.n < 1 || cfg.seed < 1 {
		return fmt.Errorf("-c, -d, -n and -seed must be positive")
	}
	baseline := ""
	if cfg.self {
		dir, err := os.MkdirTemp("", "mobius-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		l, err := bench.OpenLocal(ctx, filepath.Join(dir, "mobius.db"), bolt.Options{})
		if err != nil {
			return err
		}
		defer l.Close()
		url, stop, err := serve(l.Handler)
		if err != nil {
			return err
		}
		defer stop()
		cfg.endpoint, cfg.apiKey, cfg.project = url, l.APIKey, bench.Project
		baseline, stop, err = startBaseline(filepath.Join(dir, "baseline.db"))
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.endpoint == "" || cfg.apiKey == "" {
		return fmt.Errorf("give -endpoint and -api-key, or -self")
	}
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.c * 2}, Timeout: 30 * time.Second}
	api := strings.TrimRight(cfg.endpoint, "/") + "/v1/projects/" + cfg.project
	d := &driver{cl: cl, api: api, key: cfg.apiKey}
	names, err := d.seed(cfg.seed)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	var results []Result
	for _, mode := range strings.Split(cfg.mode, ",") {
		var op func(i int) error
		switch mode {
		case "read":
			op = func(i int) error {
				n := names[i%len(names)]
				switch i % 3 {
				case 0:
					return d.do("GET", "/secrets/"+n, nil, 200)
				case 1:
					return d.do("GET", "/secrets/"+n+"/versions/current", nil, 200)
				default:
					return d.do("GET", "/secrets?limit=50", nil, 200)
				}
			}
		case "get":
			op = func(i int) error { return d.do("GET", "/secrets/"+names[i%len(names)], nil, 200) }
		case "write":
			var created atomic.Int64
			op = func(i int) error {
				if i%2 == 0 {
					return d.do("POST", "/secrets", map[string]any{"name": fmt.Sprintf("load-w-%d-%d", time.Now().UnixNano(), created.Add(1)), "values": map[string]string{"k": "load-value"}}, 201)
				}
				return d.do("PATCH", "/secrets/"+names[i%len(names)], map[string]any{"values": map[string]string{"k": fmt.Sprintf("load-%d", i)}}, 200)
			}
		case "baseline":
			if baseline == "" {
				return fmt.Errorf("-mode baseline needs -self")
			}
			op = func(i int) error {
				resp, err := cl.Get(baseline)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("baseline: %d", resp.StatusCode)
				}
				return nil
			}
		default:
			return fmt.Errorf("unknown -mode %q: use read, get, write or baseline", mode)
		}
		results = append(results, drive(ctx, mode, cfg.c, cfg.d, cfg.n, op))
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MODE\tCONCURRENCY\tREQUESTS\tREQ/S\tP50\tP90\tP99\tERRORS\n")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%v\t%v\t%v\t%d\n", r.Mode, cfg.c, r.Requests, r.RPS(), r.P50, r.P90, r.P99, r.Errors)
	}
	tw.Flush()
	if cfg.self {
		fmt.Fprintf(stdout, "peak RSS of this process (server and load, VmHWM): %s\n", vmHWM())
	}
	for _, r := range results {
		if r.Errors > 0 {
			return fmt.Errorf("%s: %d errors", r.Mode, r.Errors)
		}
	}
	return nil
}

type driver struct {
	cl       *http.Client
	api, key string
}

func (d *driver) do(method, path string, body any, want int) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.cl.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
	}
	return nil
}

func (d *driver) seed(n int) ([]string, error) {
	prefix := fmt.Sprintf("load-%d", time.Now().UnixNano())
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", prefix, i)
		if err := d.do("POST", "/secrets", map[string]any{"name": names[i], "values": map[string]string{"k": "seed"}}, 201); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// drive runs op from c goroutines until d passes or n requests were made.
func drive(ctx context.Context, mode string, c int, d time.Duration, n int, op func(i int) error) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var next atomic.Int64
	var errs atomic.Int64
	lat := make([][]time.Duration, c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errs.Add(1)
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	r := Result{Mode: mode, Seconds: time.Since(start).Seconds(), Errors: int(errs.Load())}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r.Requests = len(all)
	if len(all) > 0 {
		pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
		r.P50, r.P90, r.P99 = pct(0.50), pct(0.90), pct(0.99)
	}
	return r
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// startBaseline serves the least a secrets read can cost: one bbolt View
// reading one record, written back as JSON.
func startBaseline(path string) (string, func(), error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return "", nil, err
	}
	record := []byte(`{"id":"sec_01HZY3Q7K8V2N4M6P8R0S2T4W6","name":"openai","description":"","project":"bench","current_version":1,"latest_version":1,"created_at":"2026-11-28T00:00:00Z","updated_at":"2026-11-28T00:00:00Z"}`)
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("secrets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("openai"), record)
	}); err != nil {
		db.Close()
		return "", nil, err
	}
	url, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out []byte
		db.View(func(tx *bbolt.Tx) error {
			out = append(out, tx.Bucket([]byte("secrets")).Get([]byte("openai"))...)
			return nil
		})
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}))
	if err != nil {
		db.Close()
		return "", nil, err
	}
	return url + "/", func() { stop(); db.Close() }, nil
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}
