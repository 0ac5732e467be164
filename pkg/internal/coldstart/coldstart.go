// Package coldstart measures how long each Lambda function takes from the
// start of its process under aws-lambda-rie to its first successful
// response, against a trivial function measured in the same run, and
// reports medians and 90th percentiles (`make coldstart`; the driver is
// this package's test). It is for the performance tools only.
package coldstart

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Series is the measurements of one function: per round, the time to the
// first response of a request that calls no AWS service (Ready), and the
// latency of the first request after it that does (FirstCall), both on a
// cold container.
type Series struct {
	Name      string          // e.g. "api"
	Ready     []time.Duration // process start → first successful response
	FirstCall []time.Duration // the first request that reaches DynamoDB/KMS
	ReadyReq  string          // what the Ready request was
	CallReq   string          // what the FirstCall request was
}

// Median is the middle value (the mean of the two middle ones for an even
// count); 0 for none.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100); 0 for none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(d))
	rank := int(float64(len(s))*p/100 + 0.999999)
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// Beyond returns, per round, how much longer fn took than the reference:
// fn[i] − ref[i]. Pairing by round cancels what the machine was doing at
// that moment better than subtracting two medians.
func Beyond(fn, ref []time.Duration) []time.Duration {
	n := min(len(fn), len(ref))
	out := make([]time.Duration, n)
	for i := range n {
		out[i] = fn[i] - ref[i]
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// Write prints the report: the reference's start, and for each function its
// start, its start beyond the reference, and its first AWS request.
func Write(w io.Writer, rounds int, ref []time.Duration, fns []Series) error {
	fmt.Fprintf(w, "Cold starts under aws-lambda-rie: %d rounds, each starting every function once in a shuffled order.\n", rounds)
	fmt.Fprintf(w, "start = process start to first successful response; beyond = start minus the trivial function's in the same round.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "function\tfirst request\tstart median\tstart p90\tbeyond median\tbeyond p90\t")
	fmt.Fprintf(tw, "trivial\tany\t%s\t%s\t\t\t\n", ms(Median(ref)), ms(Percentile(ref, 90)))
	for _, s := range fns {
		b := Beyond(s.Ready, ref)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, s.ReadyReq, ms(Median(s.Ready)), ms(Percentile(s.Ready, 90)), ms(Median(b)), ms(Percentile(b, 90)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThen, on the same cold container, the first request that reaches DynamoDB and KMS (moto here):\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "function\trequest\tmedian\tp90\t")
	for _, s := range fns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", s.Name, s.CallReq, ms(Median(s.FirstCall)), ms(Percentile(s.FirstCall, 90)))
	}
	return tw.Flush()
}
