// Command mobius-load drives a Mobius Secrets server over HTTP at given
// concurrencies for a bounded time and request count, and prints
// requests/s, latency percentiles and errors per mode:
//
//	read            get, get-version and a list of 50, in turn
//	get             get a secret
//	write           create and rotate, in turn (every write fsynced)
//	rotate          rotate a secret (PATCH with new values)
//	resolve         the resolve function through the Invoke API, 3
//	                references to 3 secrets a call, under a grant minted
//	                for each client before the mode starts
//	baseline        a bare net/http + bbolt server reading one record
//	baseline-write  a bare net/http + bbolt server writing, in one fsynced
//	                bbolt Update, the same keys and values as one rotation
//
// A mode may name its own concurrency (rotate@1); else -c applies. With
// -rounds N the modes run N times, alternating, and the report gives each
// mode's median and the ratios that compare modes (rotate@1 against
// baseline-write@1, rotate@32 against rotate@1, get against baseline, resolve
// against get), each the median of the rounds' own ratios.
//
// The server is one of:
//
//	-self          the real handler and the resolve Invoke API in this
//	               process, on a temporary embedded store, with a JSON
//	               access log to a file, written as `mobius serve` writes
//	               its log to stderr (internal/asynclog);
//	               -cpuprofile, -mutexprofile and -blockprofile profile it
//	-server BIN    `BIN serve` as a process of its own on a temporary data
//	               folder, and the baselines in another (this command run
//	               with -baseline-process); the report gives the CPU time
//	               each request cost the process that served it (CPU/REQ,
//	               from /proc, little moved by other work on the machine,
//	               unlike rates), and the server's peak memory and mapped
//	               data file
//	-endpoint URL  any running server (with -api-key and -project)
//
// With -self the baselines run in this process too:
//
//	go run ./pkg/internal/bench/mobius-load -self -c 32 -d 10s
//	go run ./pkg/internal/bench/mobius-load -server ./mobius -rounds 3 -d 4s \
//	    -mode baseline-write@1,rotate@1,rotate@32,baseline@32,get@32,resolve@32
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mobius-secrets/mobius/internal/asynclog"
	"github.com/mobius-secrets/mobius/pkg/internal/bench"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mobius-load:", err)
		os.Exit(1)
	}
}

type config struct {
	endpoint, apiKey, project, mode, server, serverEnv string
	cpuProfile, mutexProfile, blockProfile             string
	baselineProcess                                    string
	self                                               bool
	c, n, seed, rounds                                 int
	d                                                  time.Duration
}

// spec is one mode at one concurrency.
type spec struct {
	name string
	c    int
}

func (s spec) String() string { return s.name + "@" + strconv.Itoa(s.c) }

// Result is one mode's figures.
type Result struct {
	Mode          string
	C             int
	Requests      int
	Errors        int
	Seconds       float64
	P50, P90, P99 time.Duration
	FirstError    string
	// CPU is the serving process's CPU time (user and system) per
	// request, when it is a process of its own (-server); 0 if unknown.
	CPU time.Duration
}

func (r Result) RPS() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Requests) / r.Seconds
}

var modeNames = []string{"read", "get", "write", "rotate", "resolve", "baseline", "baseline-write"}

func parseModes(list string, c int) ([]spec, error) {
	var out []spec
	for _, m := range strings.Split(list, ",") {
		name, cs, hasC := strings.Cut(strings.TrimSpace(m), "@")
		s := spec{name: name, c: c}
		if hasC {
			n, err := strconv.Atoi(cs)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("-mode %q: the concurrency after @ must be a positive number", m)
			}
			s.c = n
		}
		if !slices.Contains(modeNames, name) {
			return nil, fmt.Errorf("unknown -mode %q: use %s, each optionally @concurrency", name, strings.Join(modeNames, ", "))
		}
		if slices.Contains(out, s) {
			return nil, fmt.Errorf("-mode names %s twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("mobius-load", flag.ContinueOnError)
	fs.StringVar(&cfg.endpoint, "endpoint", "", "server to drive (not with -self or -server)")
	fs.StringVar(&cfg.apiKey, "api-key", os.Getenv("MOBIUS_API_KEY"), "API key with every scope but keys:admin")
	fs.StringVar(&cfg.project, "project", "default", "project")
	fs.StringVar(&cfg.mode, "mode", "read,write", "comma-separated modes, each optionally @concurrency: "+strings.Join(modeNames, ", "))
	fs.BoolVar(&cfg.self, "self", false, "serve the real handler on a temporary embedded store in this process, and the baselines")
	fs.StringVar(&cfg.server, "server", "", "path of a mobius binary: run `mobius serve` as a process of its own on a temporary data folder, and the baselines here")
	fs.StringVar(&cfg.serverEnv, "server-env", "", "with -server: comma-separated NAME=VALUE added to the server's environment (e.g. GOMEMLIMIT=32MiB)")
	fs.IntVar(&cfg.c, "c", 32, "concurrent clients of a mode that names none")
	fs.DurationVar(&cfg.d, "d", 10*time.Second, "duration of each mode")
	fs.IntVar(&cfg.n, "n", 1_000_000, "at most this many requests per mode")
	fs.IntVar(&cfg.seed, "seed", 100, "secrets to create before measuring")
	fs.IntVar(&cfg.rounds, "rounds", 1, "run the modes this many times, alternating; report medians")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "with -self: write a CPU profile of the measured modes to this file")
	fs.StringVar(&cfg.mutexProfile, "mutexprofile", "", "with -self: write a mutex profile of the measured modes to this file")
	fs.StringVar(&cfg.blockProfile, "blockprofile", "", "with -self: write a block profile of the measured modes to this file")
	fs.StringVar(&cfg.baselineProcess, "baseline-process", "", "serve the baselines on a temporary store in this folder, print their URLs and run until standard input ends (what -server starts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.baselineProcess != "" {
		return runBaselines(ctx, cfg.baselineProcess, cfg.seed, stdout)
	}
	if cfg.c < 1 || cfg.d <= 0 || cfg.n < 1 || cfg.seed < 3 || cfg.rounds < 1 {
		return fmt.Errorf("-c, -d, -n and -rounds must be positive, and -seed at least 3")
	}
	specs, err := parseModes(cfg.mode, cfg.c)
	if err != nil {
		return err
	}
	if cfg.self && cfg.server != "" || (cfg.self || cfg.server != "") && cfg.endpoint != "" {
		return fmt.Errorf("give one of -self, -server and -endpoint")
	}
	if (cfg.cpuProfile != "" || cfg.mutexProfile != "" || cfg.blockProfile != "") && !cfg.self {
		return fmt.Errorf("-cpuprofile, -mutexprofile and -blockprofile profile this process: use them with -self")
	}
	local := cfg.self || cfg.server != ""
	var baseline, baselineWrite string
	var child *serverProcess
	basePID := 0
	if local {
		dir, err := os.MkdirTemp("", "mobius-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if cfg.self {
			logf, err := os.Create(filepath.Join(dir, "server.log"))
			if err != nil {
				return err
			}
			defer logf.Close()
			lw := asynclog.New(logf, 0)
			defer lw.Close()
			logger := slog.New(slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
			l, err := bench.OpenLocalWith(ctx, filepath.Join(dir, "mobius.db"), bench.LocalOptions{Logger: logger})
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
		} else {
			child, err = startServer(ctx, cfg.server, filepath.Join(dir, "server"), splitEnv(cfg.serverEnv))
			if err != nil {
				return err
			}
			defer child.stop()
			cfg.endpoint, cfg.apiKey, cfg.project = child.endpoint, child.apiKey, child.project
		}
		if cfg.self {
			var stop func()
			baseline, baselineWrite, stop, err = startBaselines(ctx, dir, cfg.seed)
			if err != nil {
				return err
			}
			defer stop()
		} else {
			// Beside a server of its own, the baselines are a process of
			// their own too: each side's CPU is its own.
			bp, err := startBaselineProcess(filepath.Join(dir, "baselines"), cfg.seed)
			if err != nil {
				return err
			}
			defer bp.stop()
			baseline, baselineWrite, basePID = bp.baseline, bp.baselineWrite, bp.cmd.Process.Pid
		}
	}
	if cfg.endpoint == "" || cfg.apiKey == "" {
		return fmt.Errorf("give -endpoint and -api-key, or -self, or -server")
	}
	for _, s := range specs {
		if strings.HasPrefix(s.name, "baseline") && !local {
			return fmt.Errorf("-mode %s needs -self or -server", s.name)
		}
	}
	maxC := 0
	for _, s := range specs {
		maxC = max(maxC, s.c)
	}
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxC * 2}, Timeout: 30 * time.Second}
	root := strings.TrimRight(cfg.endpoint, "/")
	d := &driver{cl: cl, root: root, api: root + "/v1/projects/" + cfg.project, key: cfg.apiKey}
	names, err := d.seed(cfg.seed)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	stopProfiles, err := startProfiles(cfg)
	if err != nil {
		return err
	}
	rounds := make([][]Result, cfg.rounds)
	for round := range cfg.rounds {
		for _, s := range specs {
			op, err := d.mode(s, names, baseline, baselineWrite)
			if err != nil {
				return err
			}
			pid := 0
			if child != nil {
				pid = child.pid()
				if strings.HasPrefix(s.name, "baseline") {
					pid = basePID
				}
			}
			cpu0 := cpuTime(pid)
			r := drive(ctx, s, cfg.d, cfg.n, op)
			if cpu1 := cpuTime(pid); pid != 0 && cpu0 >= 0 && cpu1 >= 0 && r.Requests > 0 {
				r.CPU = (cpu1 - cpu0) / time.Duration(r.Requests)
			}
			rounds[round] = append(rounds[round], r)
		}
	}
	if err := stopProfiles(); err != nil {
		return err
	}
	if cfg.rounds > 1 {
		for i, rs := range rounds {
			fmt.Fprintf(stdout, "round %d\n", i+1)
			report(stdout, rs)
		}
		fmt.Fprintf(stdout, "median of %d rounds\n", cfg.rounds)
	}
	med := medians(rounds)
	report(stdout, med)
	if rs := ratios(rounds); len(rs) > 0 {
		fmt.Fprintln(stdout, "ratios (median of the rounds' own ratios):")
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, r := range rs {
			fmt.Fprintf(tw, "  %s\t%.2f\t(rounds: %s)\n", r.name, r.median, r.each)
		}
		tw.Flush()
	}
	if cfg.self {
		fmt.Fprintf(stdout, "peak RSS of this process (server and load, VmHWM): %s\n", procStatus("self", "VmHWM"))
	}
	if child != nil {
		pid := strconv.Itoa(child.pid())
		size, rss := mapped(pid, "mobius.db")
		anon, file := child.mem.peaks()
		fmt.Fprintf(stdout, "server process: peak RSS (VmHWM) %s, RSS now %s; data file mapped %d KiB, of it resident %d KiB\n",
			procStatus(pid, "VmHWM"), procStatus(pid, "VmRSS"), size, rss)
		fmt.Fprintf(stdout, "server process, sampled every 50 ms: peak anonymous RSS (RssAnon) %d kB, peak file-backed RSS (RssFile: the mapped data file, the binary) %d kB\n", anon, file)
	}
	var errs []error
	for _, r := range med {
		if r.Errors > 0 {
			errs = append(errs, fmt.Errorf("%s@%d: %d errors, the first: %s", r.Mode, r.C, r.Errors, r.FirstError))
		}
	}
	return errors.Join(errs...)
}

func report(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MODE\tCONCURRENCY\tREQUESTS\tREQ/S\tP50\tP90\tP99\tERRORS\tCPU/REQ\n")
	for _, r := range rs {
		cpu := "-"
		if r.CPU > 0 {
			cpu = r.CPU.Round(100 * time.Nanosecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%v\t%v\t%v\t%d\t%s\n", r.Mode, r.C, r.Requests, r.RPS(),
			r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Errors, cpu)
	}
	tw.Flush()
}

// medians is each mode's median over the rounds: of its rate and of each
// percentile, separately; requests and errors are summed.
func medians(rounds [][]Result) []Result {
	out := make([]Result, len(rounds[0]))
	for i := range out {
		var rps []float64
		var p50, p90, p99, cpu []time.Duration
		r := Result{Mode: rounds[0][i].Mode, C: rounds[0][i].C}
		for _, rs := range rounds {
			x := rs[i]
			r.Requests += x.Requests
			r.Errors += x.Errors
			if r.FirstError == "" {
				r.FirstError = x.FirstError
			}
			rps = append(rps, x.RPS())
			p50, p90, p99 = append(p50, x.P50), append(p90, x.P90), append(p99, x.P99)
			if x.CPU > 0 {
				cpu = append(cpu, x.CPU)
			}
		}
		// Seconds is set so that RPS() is the median rate.
		if m := median(rps); m > 0 {
			r.Seconds = float64(r.Requests) / m
		}
		r.P50, r.P90, r.P99, r.CPU = median(p50), median(p90), median(p99), median(cpu)
		out[i] = r
	}
	return out
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type ratio struct {
	name   string
	median float64
	each   string
}

// ratios compares the modes that the targets compare, in each round, and
// gives the median of each comparison.
func ratios(rounds [][]Result) []ratio {
	find := func(rs []Result, name string, c int) (Result, bool) {
		i := slices.IndexFunc(rs, func(r Result) bool { return r.Mode == name && r.C == c })
		if i < 0 || rs[i].Requests == 0 {
			return Result{}, false
		}
		return rs[i], true
	}
	type pair struct {
		name     string
		num, den spec
		p50      bool // compare p50 latency instead of the rate
		cpu      bool // compare CPU per request instead of the rate
	}
	var pairs []pair
	for _, r := range rounds[0] {
		switch r.Mode {
		case "rotate":
			if r.C == 1 {
				pairs = append(pairs, pair{"rotate@1 / baseline-write@1 (req/s)", spec{"rotate", 1}, spec{"baseline-write", 1}, false, false},
					pair{"rotate@1 / baseline-write@1 (CPU per request)", spec{"rotate", 1}, spec{"baseline-write", 1}, false, true})
			} else {
				pairs = append(pairs, pair{fmt.Sprintf("rotate@%d / rotate@1 (req/s)", r.C), spec{"rotate", r.C}, spec{"rotate", 1}, false, false})
			}
		case "write":
			if r.C > 1 {
				pairs = append(pairs, pair{fmt.Sprintf("write@%d / write@1 (req/s)", r.C), spec{"write", r.C}, spec{"write", 1}, false, false})
			}
		case "get":
			pairs = append(pairs,
				pair{fmt.Sprintf("get@%d / baseline@%[1]d (req/s)", r.C), spec{"get", r.C}, spec{"baseline", r.C}, false, false},
				pair{fmt.Sprintf("get@%d / baseline@%[1]d (p50)", r.C), spec{"get", r.C}, spec{"baseline", r.C}, true, false},
				pair{fmt.Sprintf("get@%d / baseline@%[1]d (CPU per request)", r.C), spec{"get", r.C}, spec{"baseline", r.C}, false, true})
		case "resolve":
			pairs = append(pairs, pair{fmt.Sprintf("resolve@%d / get@%[1]d (req/s)", r.C), spec{"resolve", r.C}, spec{"get", r.C}, false, false},
				pair{fmt.Sprintf("resolve@%d / get@%[1]d (CPU per request)", r.C), spec{"resolve", r.C}, spec{"get", r.C}, false, true})
		}
	}
	var out []ratio
	for _, p := range pairs {
		var each []float64
		for _, rs := range rounds {
			a, okA := find(rs, p.num.name, p.num.c)
			b, okB := find(rs, p.den.name, p.den.c)
			if !okA || !okB {
				continue
			}
			if p.cpu {
				if a.CPU > 0 && b.CPU > 0 {
					each = append(each, float64(a.CPU)/float64(b.CPU))
				}
			} else if p.p50 {
				if b.P50 > 0 {
					each = append(each, float64(a.P50)/float64(b.P50))
				}
			} else if b.RPS() > 0 {
				each = append(each, a.RPS()/b.RPS())
			}
		}
		if len(each) == 0 {
			continue
		}
		var strs []string
		for _, e := range each {
			strs = append(strs, strconv.FormatFloat(e, 'f', 2, 64))
		}
		out = append(out, ratio{p.name, median(each), strings.Join(strs, " ")})
	}
	return out
}

type driver struct {
	cl              *http.Client
	root, api, key  string
	created, rotate atomic.Int64
}

func loadValues(i int) map[string]string {
	return map[string]string{"k": fmt.Sprintf("load-value-%08d", i)}
}

// mode returns the operation of one mode, run by client w as its i-th
// request of the mode; what a mode needs first (resolve grants) is made
// here, outside the measured time.
func (d *driver) mode(s spec, names []string, baseline, baselineWrite string) (func(w, i int) error, error) {
	switch s.name {
	case "read":
		return func(_, i int) error {
			n := names[i%len(names)]
			switch i % 3 {
			case 0:
				return d.do("GET", d.api+"/secrets/"+n, nil, 200)
			case 1:
				return d.do("GET", d.api+"/secrets/"+n+"/versions/current", nil, 200)
			default:
				return d.do("GET", d.api+"/secrets?limit=50", nil, 200)
			}
		}, nil
	case "get":
		return func(_, i int) error { return d.do("GET", d.api+"/secrets/"+names[i%len(names)], nil, 200) }, nil
	case "write":
		return func(_, i int) error {
			if i%2 == 0 {
				return d.do("POST", d.api+"/secrets", map[string]any{"name": fmt.Sprintf("load-w-%d-%d", time.Now().UnixNano(), d.created.Add(1)), "values": loadValues(i)}, 201)
			}
			return d.do("PATCH", d.api+"/secrets/"+names[i%len(names)], map[string]any{"values": loadValues(i)}, 200)
		}, nil
	case "rotate":
		return func(_, i int) error {
			return d.do("PATCH", d.api+"/secrets/"+names[i%len(names)], map[string]any{"values": loadValues(int(d.rotate.Add(1)))}, 200)
		}, nil
	case "resolve":
		events := make([][]byte, s.c)
		for w := range s.c {
			three := []string{names[(3*w)%len(names)], names[(3*w+1)%len(names)], names[(3*w+2)%len(names)]}
			grant, err := d.mintGrant(three, w)
			if err != nil {
				return nil, fmt.Errorf("minting a resolve grant: %w", err)
			}
			ev, _ := json.Marshal(map[string]any{
				"grant": grant,
				"input": map[string]any{
					"url":   "postgres://app:${secret:" + three[0] + ".k}@db:5432/app",
					"token": "${secret:" + three[1] + ".k}",
					"headers": map[string]string{
						"Authorization": "Bearer ${secret:" + three[2] + ".k}",
					},
				},
				"step": map[string]any{"client": w},
			})
			events[w] = ev
		}
		return func(w, _ int) error { return d.invoke(events[w]) }, nil
	case "baseline":
		return func(_, _ int) error { return d.plain("GET", baseline) }, nil
	case "baseline-write":
		return func(_, _ int) error { return d.plain("POST", baselineWrite) }, nil
	}
	return nil, fmt.Errorf("unknown mode %q", s.name)
}

func (d *driver) do(method, url string, body any, want int) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
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
		return fmt.Errorf("%s %s: %d, want %d", method, strings.TrimPrefix(url, d.root), resp.StatusCode, want)
	}
	return nil
}

func (d *driver) plain(method, url string) error {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return err
	}
	resp, err := d.cl.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("baseline %s: %d", method, resp.StatusCode)
	}
	return nil
}

func (d *driver) mintGrant(secrets []string, client int) (string, error) {
	b, _ := json.Marshal(map[string]any{"secrets": secrets, "run": map[string]any{"load": client}})
	req, err := http.NewRequest("POST", d.api+"/resolve-grants", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Grant string `json:"grant"`
	}
	if resp.StatusCode != 201 {
		return "", fmt.Errorf("POST /resolve-grants: %d, want 201", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Grant == "" {
		return "", fmt.Errorf("POST /resolve-grants: no grant in the answer")
	}
	return out.Grant, nil
}

// invoke calls the resolve function through the Invoke API, as the AWS
// SDK's Lambda client does, and checks that it resolved.
func (d *driver) invoke(event []byte) error {
	resp, err := d.cl.Post(d.root+lambdainvoke.PathPrefix+"functions/"+bench.ResolveFunction+"/invocations", "application/json", bytes.NewReader(event))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Resolved  []json.RawMessage `json:"resolved"`
		ErrorType string            `json:"errorType"`
	}
	derr := json.NewDecoder(resp.Body).Decode(&out)
	io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode != 200:
		return fmt.Errorf("invoke: %d, want 200", resp.StatusCode)
	case resp.Header.Get(lambdainvoke.HeaderFunctionError) != "":
		return fmt.Errorf("invoke: function error %s", out.ErrorType)
	case derr != nil || len(out.Resolved) != 3:
		return fmt.Errorf("invoke: %d references resolved, want 3", len(out.Resolved))
	}
	return nil
}

func (d *driver) seed(n int) ([]string, error) {
	prefix := fmt.Sprintf("load-%d", time.Now().UnixNano())
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", prefix, i)
		if err := d.do("POST", d.api+"/secrets", map[string]any{"name": names[i], "values": loadValues(i)}, 201); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// drive runs op from s.c goroutines until d passes or n requests were made.
func drive(ctx context.Context, s spec, d time.Duration, n int, op func(w, i int) error) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var next atomic.Int64
	var errs atomic.Int64
	var first atomic.Pointer[string]
	lat := make([][]time.Duration, s.c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range s.c {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(w, i); err != nil {
					errs.Add(1)
					msg := err.Error()
					first.CompareAndSwap(nil, &msg)
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := Result{Mode: s.name, C: s.c, Seconds: time.Since(start).Seconds(), Errors: int(errs.Load())}
	if p := first.Load(); p != nil {
		r.FirstError = *p
	}
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

// startBaselineWrite serves the least a rotation can cost: one fsynced
// bbolt Update (every commit synced, as bbolt does by default) writing the keys and
// values that one rotation commits (rotation: the operations of each of
// its commits), in the embedded store's layout (partition, 0, sort key; a
// 2-byte header before the value). Items a rotation creates get a new key
// each time, so the file grows as a rotated store does; items it replaces
// are replaced in one of slots sets of keys, in turn.
func startBaselineWrite(path string, rotation [][]kv.Op, slots int) (string, func(), error) {
	// The embedded store's settings: 1 GiB mapped up front, the file grown
	// 1 MiB at a time.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, InitialMmapSize: 1 << 30})
	if err != nil {
		return "", nil, err
	}
	db.AllocSize = 1 << 20
	type put struct {
		key   []byte
		value []byte
		fresh bool
	}
	var puts []put
	for _, ops := range rotation {
		for _, op := range ops {
			if op.Kind != kv.OpPut {
				continue
			}
			v := make([]byte, 2+len(op.Item.Value))
			rand.Read(v)
			_, fresh := op.If.IsAbsent()
			puts = append(puts, put{key: []byte(op.Item.Key.Partition + "\x00" + op.Item.Key.Sort), value: v, fresh: fresh})
		}
	}
	if len(puts) == 0 {
		db.Close()
		return "", nil, fmt.Errorf("a rotation wrote nothing")
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("kv"))
		return err
	}); err != nil {
		db.Close()
		return "", nil, err
	}
	var n atomic.Int64
	url, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		err := db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("kv"))
			b.FillPercent = 0.75
			for _, p := range puts {
				k := p.key
				if p.fresh {
					k = strconv.AppendInt(append(bytes.Clone(k), '#'), i, 10)
				} else {
					k = strconv.AppendInt(append(bytes.Clone(k), '#'), i%int64(slots), 10)
				}
				if err := b.Put(k, p.value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			http.Error(w, "write failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	if err != nil {
		db.Close()
		return "", nil, err
	}
	return url + "/", func() { stop(); db.Close() }, nil
}

// startBaselines starts both baseline servers on stores in dir; slots is
// how many secrets the rotations go round.
func startBaselines(ctx context.Context, dir string, slots int) (baseline, baselineWrite string, stop func(), err error) {
	baseline, stopRead, err := startBaseline(filepath.Join(dir, "baseline.db"))
	if err != nil {
		return "", "", nil, err
	}
	rotation, err := bench.RotationOps(ctx, dir, loadValues(0))
	if err != nil {
		stopRead()
		return "", "", nil, fmt.Errorf("measuring one rotation: %w", err)
	}
	baselineWrite, stopWrite, err := startBaselineWrite(filepath.Join(dir, "baseline-write.db"), rotation, slots)
	if err != nil {
		stopRead()
		return "", "", nil, err
	}
	return baseline, baselineWrite, func() { stopWrite(); stopRead() }, nil
}

// runBaselines is the baseline process: it serves the baselines, prints
// their URLs and runs until its standard input ends.
func runBaselines(ctx context.Context, dir string, slots int, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	baseline, baselineWrite, stop, err := startBaselines(ctx, dir, slots)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "baseline %s\nbaseline-write %s\n", baseline, baselineWrite)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// baselineProcess is this command run with -baseline-process.
type baselineProcess struct {
	cmd                     *exec.Cmd
	stdin                   io.Closer
	baseline, baselineWrite string
}

func startBaselineProcess(dir string, slots int) (*baselineProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-baseline-process", dir, "-seed", strconv.Itoa(slots))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the baseline process: %w", err)
	}
	p := &baselineProcess{cmd: cmd, stdin: in}
	sc := bufio.NewScanner(out)
	for (p.baseline == "" || p.baselineWrite == "") && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "baseline "); ok {
			p.baseline = v
		} else if v, ok := strings.CutPrefix(sc.Text(), "baseline-write "); ok {
			p.baselineWrite = v
		}
	}
	if p.baseline == "" || p.baselineWrite == "" {
		p.stop()
		return nil, fmt.Errorf("the baseline process printed no URLs")
	}
	go io.Copy(io.Discard, out)
	return p, nil
}

// stop ends the baseline process by closing its standard input.
func (p *baselineProcess) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// cpuTime is the user and system CPU time process pid has used so far, from
// /proc/PID/stat (in clock ticks of 10 ms); -1 if unknown or pid is 0.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The fields after the command name, which ends at the last ')':
	// state is the 3rd field of the line, utime the 14th and stime the 15th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(u+s) * 10 * time.Millisecond
}

// startProfiles starts the profiles cfg asks for and returns what stops
// them and writes them out.
func startProfiles(cfg config) (func() error, error) {
	var stops []func() error
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() error { pprof.StopCPUProfile(); return f.Close() })
	}
	lookup := func(path, name string, enable, disable func()) {
		if path == "" {
			return
		}
		enable()
		stops = append(stops, func() error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			err = pprof.Lookup(name).WriteTo(f, 0)
			disable()
			return err
		})
	}
	lookup(cfg.mutexProfile, "mutex", func() { runtime.SetMutexProfileFraction(5) }, func() { runtime.SetMutexProfileFraction(0) })
	lookup(cfg.blockProfile, "block", func() { runtime.SetBlockProfileRate(10_000) }, func() { runtime.SetBlockProfileRate(0) })
	return func() error {
		var errs []error
		for _, s := range stops {
			errs = append(errs, s())
		}
		return errors.Join(errs...)
	}, nil
}

// serverProcess is `mobius serve` running as a child process.
type serverProcess struct {
	cmd                       *exec.Cmd
	endpoint, apiKey, project string
	done                      chan error
	mem                       memPeaks
}

// memPeaks is the highest anonymous and file-backed resident memory seen
// of a process: the kernel keeps only the peak of their sum (VmHWM).
type memPeaks struct {
	mu         sync.Mutex
	anon, file int64 // kB
	stopped    bool
}

// sample reads /proc/pid/status every 50 ms until the process is
// stopped.
func (m *memPeaks) sample(pid string) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		anon, _ := strconv.ParseInt(strings.TrimSuffix(procStatus(pid, "RssAnon"), " kB"), 10, 64)
		file, _ := strconv.ParseInt(strings.TrimSuffix(procStatus(pid, "RssFile"), " kB"), 10, 64)
		m.mu.Lock()
		if m.stopped {
			m.mu.Unlock()
			return
		}
		m.anon, m.file = max(m.anon, anon), max(m.file, file)
		m.mu.Unlock()
		<-t.C
	}
}

func (m *memPeaks) peaks() (anon, file int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.anon, m.file
}

func (p *serverProcess) pid() int { return p.cmd.Process.Pid }

// startServer runs `bin serve` on a fresh data folder under dir, with a
// home and configuration folder of its own, and reads the endpoint and
// the first API key from the export lines it prints.
func startServer(ctx context.Context, bin, dir string, env []string) (*serverProcess, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "share"),
		"MOBIUS_STORE=", "MOBIUS_DATA=", "MOBIUS_ADDR=", "MOBIUS_LOG_LEVEL=")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s serve: %w", bin, err)
	}
	p := &serverProcess{cmd: cmd, done: make(chan error, 1)}
	go p.mem.sample(strconv.Itoa(cmd.Process.Pid))
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, out)
	}()
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	timeout := time.After(30 * time.Second)
	for p.endpoint == "" || p.apiKey == "" || p.project == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				p.stop()
				return nil, fmt.Errorf("%s serve stopped before it printed its endpoint and key (its log: %s)", bin, filepath.Join(dir, "server.log"))
			}
			if v, ok := strings.CutPrefix(line, "export MOBIUS_ENDPOINT="); ok {
				p.endpoint = v
			} else if v, ok := strings.CutPrefix(line, "export MOBIUS_API_KEY="); ok {
				p.apiKey = v
			} else if v, ok := strings.CutPrefix(line, "export MOBIUS_PROJECT="); ok {
				p.project = v
			}
		case <-timeout:
			p.stop()
			return nil, fmt.Errorf("%s serve printed no endpoint and key within 30 s", bin)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p, nil
}

// stop asks the server to stop (SIGTERM) and waits for it, killing it
// after 15 s.
func (p *serverProcess) stop() {
	p.mem.mu.Lock()
	p.mem.stopped = true
	p.mem.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func splitEnv(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// procStatus reads one field of /proc/PID/status ("self" for this process).
func procStatus(pid, field string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// mapped sums the size and the resident part, in KiB, of the process's
// mappings of files named base (bbolt's memory map of the data file).
func mapped(pid, base string) (sizeKiB, rssKiB int64) {
	b, err := os.ReadFile("/proc/" + pid + "/smaps")
	if err != nil {
		return -1, -1
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if strings.Contains(f[0], "-") && len(f) >= 5 { // a mapping's first line
			in = len(f) >= 6 && filepath.Base(f[len(f)-1]) == base
			continue
		}
		if !in || len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Size:":
			sizeKiB += n
		case "Rss:":
			rssKiB += n
		}
	}
	return sizeKiB, rssKiB
}
