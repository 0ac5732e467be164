package bolt_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	bbolt "go.etcd.io/bbolt"
)

// BenchmarkCommit compares the driver's commits with bare, fsynced bbolt
// Updates of the same bytes, from 1 and from 32 writers: the ratio of
// their commits/s is what group commit buys (and costs).
//
//	go test -run '^$' -bench Commit -benchtime 3s ./pkg/store/bolt
func BenchmarkCommit(b *testing.B) {
	value := bytes.Repeat([]byte{'v'}, 200)
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("driver/writers=%d", writers), func(b *testing.B) {
			d := MustOpen(b)
			run(b, writers, func(i int64) error {
				return d.Commit(ctx, kv.Put(kv.Item{Key: key("P#acme", fmt.Sprintf("S#%012d", i)), Value: value, Rev: 1}, absent))
			})
		})
		b.Run(fmt.Sprintf("bbolt-update/writers=%d", writers), func(b *testing.B) {
			db, err := bbolt.Open(filepath.Join(b.TempDir(), "bare.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("kv")); return err }); err != nil {
				b.Fatal(err)
			}
			stored := append([]byte{2, 0}, value...) // the driver's header, then the value
			run(b, writers, func(i int64) error {
				return db.Update(func(tx *bbolt.Tx) error {
					return tx.Bucket([]byte("kv")).Put([]byte(fmt.Sprintf("P#acme\x00S#%012d", i)), stored)
				})
			})
		})
	}
}

// run calls f(0) … f(b.N-1) from writers goroutines and reports commits/s
// and the CPU time of the process per commit (which, on a machine shared
// with other work, varies less than the rate: fsync latency follows the
// disk's other users).
func run(b *testing.B, writers int, f func(i int64) error) {
	b.ResetTimer()
	cpu0 := processCPU()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				if err := f(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	if cpu1 := processCPU(); cpu0 >= 0 && cpu1 >= 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/commit")
	}
}
