package main

import (
	"context"
	"strings"
	"testing"
)

// TestSelfLoadRuns drives its own server briefly in every mode and checks
// that requests ran without errors and the report has every row.
func TestSelfLoadRuns(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-self", "-c", "4", "-d", "300ms", "-seed", "5", "-mode", "read,get,write,baseline"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, mode := range []string{"read", "get", "write", "baseline"} {
		var found bool
		for _, line := range strings.Split(out.String(), "\n") {
			f := strings.Fields(line)
			if len(f) == 8 && f[0] == mode {
				found = true
				if f[2] == "0" || f[7] != "0" {
					t.Errorf("%s: requests %s, errors %s", mode, f[2], f[7])
				}
			}
		}
		if !found {
			t.Errorf("no %s row in:\n%s", mode, out.String())
		}
	}
	if !strings.Contains(out.String(), "peak RSS") {
		t.Error("no RSS line")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-c", "0", "-self"}, {"-mode", "nope", "-self", "-d", "10ms", "-seed", "1"}, {}, {"-mode", "baseline", "-endpoint", "http://127.0.0.1:1", "-api-key", "x"}} {
		if err := run(context.Background(), args, &strings.Builder{}); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
