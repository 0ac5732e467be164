package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the baseline process that -server
// starts (it runs itself with -baseline-process).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-baseline-process" {
		if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// rows returns the report's rows of the final table (after the last
// header), keyed by mode@concurrency.
func rows(t *testing.T, out string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 9 && f[0] == "MODE" {
			clear(got)
			continue
		}
		if len(f) == 9 && slices.Contains(modeNames, f[0]) {
			got[f[0]+"@"+f[1]] = f
		}
	}
	return got
}

// TestSelfLoadRuns drives its own server briefly in every mode and checks
// that requests ran without errors and the report has every row.
func TestSelfLoadRuns(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-self", "-c", "4", "-d", "300ms", "-seed", "5",
		"-mode", "read,get,write,rotate@1,rotate,resolve,baseline,baseline-write@1"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := rows(t, out.String())
	for _, mode := range []string{"read@4", "get@4", "write@4", "rotate@1", "rotate@4", "resolve@4", "baseline@4", "baseline-write@1"} {
		f, ok := got[mode]
		if !ok {
			t.Errorf("no %s row in:\n%s", mode, out.String())
			continue
		}
		if f[2] == "0" || f[7] != "0" {
			t.Errorf("%s: requests %s, errors %s", mode, f[2], f[7])
		}
	}
	for _, want := range []string{"peak RSS", "rotate@1 / baseline-write@1 (req/s)", "rotate@4 / rotate@1 (req/s)",
		"get@4 / baseline@4 (req/s)", "get@4 / baseline@4 (p50)", "resolve@4 / get@4 (req/s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}

// With -rounds the modes alternate and the report gives each round, then
// the medians, and each ratio with one figure per round.
func TestRounds(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-self", "-rounds", "3", "-d", "100ms", "-seed", "3", "-mode", "baseline@2,get@2"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"round 1\n", "round 2\n", "round 3\n", "median of 3 rounds\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in:\n%s", want, s)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "get@2 / baseline@2 (req/s)") {
			_, each, _ := strings.Cut(line, "(rounds: ")
			if n := len(strings.Fields(strings.TrimSuffix(each, ")"))); n != 3 {
				t.Errorf("ratio with %d round figures, want 3: %q", n, line)
			}
			return
		}
	}
	t.Errorf("no get/baseline ratio in:\n%s", s)
}

func TestMedians(t *testing.T) {
	ms := time.Millisecond
	rounds := [][]Result{
		{{Mode: "get", C: 1, Requests: 100, Seconds: 1, P50: 3 * ms}},
		{{Mode: "get", C: 1, Requests: 300, Seconds: 1, P50: 1 * ms, Errors: 1, FirstError: "boom"}},
		{{Mode: "get", C: 1, Requests: 200, Seconds: 1, P50: 2 * ms}},
	}
	m := medians(rounds)[0]
	if rps := m.RPS(); rps < 199.9 || rps > 200.1 {
		t.Errorf("median rate %.1f, want 200", rps)
	}
	if m.P50 != 2*ms || m.Requests != 600 || m.Errors != 1 || m.FirstError != "boom" {
		t.Errorf("medians: %+v", m)
	}
}

func TestBadFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"zero clients":             {"-c", "0", "-self"},
		"unknown mode":             {"-mode", "nope", "-self", "-d", "10ms", "-seed", "3"},
		"bad concurrency":          {"-mode", "get@0", "-self", "-d", "10ms", "-seed", "3"},
		"mode twice":               {"-mode", "get@2,get@2", "-self", "-d", "10ms", "-seed", "3"},
		"no server":                {},
		"baseline without local":   {"-mode", "baseline", "-endpoint", "http://127.0.0.1:1", "-api-key", "x"},
		"self and server":          {"-self", "-server", "/bin/false"},
		"profile without self":     {"-cpuprofile", "cpu.out", "-endpoint", "http://127.0.0.1:1", "-api-key", "x"},
		"too few secrets":          {"-self", "-seed", "2"},
		"server that cannot run":   {"-server", "/bin/false", "-d", "10ms"},
		"server that is no binary": {"-server", "/nonexistent/mobius", "-d", "10ms"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(context.Background(), args, &strings.Builder{}); err == nil {
				t.Errorf("run(%q) succeeded", args)
			}
		})
	}
}

// -server runs `mobius serve` as a process of its own and reports its
// peak RSS and its mapped data file.
func TestServerProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mobius")
	build := exec.Command("go", "build", "-o", bin, "github.com/mobius-secrets/mobius/cmd/mobius")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building mobius: %v\n%s", err, out)
	}
	var out strings.Builder
	err := run(context.Background(), []string{"-server", bin, "-server-env", "GOMEMLIMIT=64MiB", "-d", "200ms", "-seed", "3", "-mode", "get@2,resolve@2,rotate@1,baseline@2,baseline-write@1"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := rows(t, out.String())
	// Each side is a process of its own, so each row has the CPU time
	// per request of the process that served it.
	for _, mode := range []string{"get@2", "resolve@2", "rotate@1", "baseline@2", "baseline-write@1"} {
		if f, ok := got[mode]; !ok || f[2] == "0" || f[7] != "0" || f[8] == "-" {
			t.Errorf("%s: row %q", mode, f)
		}
	}
	if !strings.Contains(out.String(), "get@2 / baseline@2 (CPU per request)") {
		t.Errorf("no CPU ratio in:\n%s", out.String())
	}
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "server process: peak RSS") {
			line = l
		}
	}
	f := strings.Fields(line)
	// server process: peak RSS (VmHWM) N kB, RSS now N kB; data file mapped N KiB, of it resident N KiB
	if len(f) < 21 {
		t.Fatalf("no server line in:\n%s", out.String())
	}
	hwm, _ := strconv.Atoi(f[5])
	mapped, _ := strconv.Atoi(f[14])
	if hwm <= 0 || mapped <= 0 {
		t.Errorf("peak RSS %d kB, mapped %d KiB: %q", hwm, mapped, line)
	}
	var anon, file int
	for _, l := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "server process, sampled every 50 ms: peak anonymous RSS (RssAnon) "); ok {
			fmt.Sscanf(rest, "%d kB, peak file-backed RSS (RssFile: the mapped data file, the binary) %d kB", &anon, &file)
		}
	}
	if anon <= 0 || file <= 0 || anon+file < hwm/2 {
		t.Errorf("sampled peaks: anonymous %d kB, file-backed %d kB, against VmHWM %d kB:\n%s", anon, file, hwm, out.String())
	}
}
