package coldstart

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStatistics(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, c := range []struct {
		in          []time.Duration
		median, p90 time.Duration
	}{
		{nil, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(9, 1), 5 * time.Millisecond, 9 * time.Millisecond},
		{ms(5, 3, 4), 4 * time.Millisecond, 5 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 5500 * time.Microsecond, 9 * time.Millisecond},
		{ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 10500 * time.Microsecond, 18 * time.Millisecond},
	} {
		in := slices.Clone(c.in)
		if got := Median(c.in); got != c.median {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.median)
		}
		if got := Percentile(c.in, 90); got != c.p90 {
			t.Errorf("Percentile(%v, 90) = %v, want %v", c.in, got, c.p90)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("the statistics reordered their input")
		}
	}
	if got := Beyond(ms(10, 20, 30), ms(4, 5)); !slices.Equal(got, ms(6, 15)) {
		t.Errorf("Beyond = %v", got)
	}
}

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	d := func(v int) []time.Duration { return []time.Duration{time.Duration(v) * time.Millisecond} }
	err := Write(&b, 1, d(10), []Series{
		{Name: "api", ReadyReq: "GET /healthz", CallReq: "GET a secret", Ready: d(25), FirstCall: d(8)},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"1 rounds", "trivial", "10.0 ms", "api", "GET /healthz", "25.0 ms", "15.0 ms", "GET a secret", "8.0 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}
