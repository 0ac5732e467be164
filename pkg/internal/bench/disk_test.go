package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mobius-secrets/mobius/pkg/internal/bench"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// value100 is a values object of one key whose value is 100 bytes.
func value100(i int) map[string]string {
	v := fmt.Sprintf("%08d", i)
	return map[string]string{"value": v + strings.Repeat("x", 100-len(v))}
}

// diskFigures is what BenchmarkBytesOnDisk measures of one store.
type diskFigures struct {
	secrets               int
	file, used, compacted int64 // bytes: the file, its pages in use, a compacted copy's pages in use
	compactedFile         int64
	items, valueBytes     int64
	// The same once the change events are gone (the Sweep deletes them
	// EventRetention after): the steady state of secrets that stay as
	// they are. usedNoEvents keeps the pages the events freed as free.
	usedNoEvents, compactedNoEvents int64
	itemsNoEvents, valueNoEvents    int64
	record                          map[string]int // value bytes of one secret's items, by kind
	keyBytes                        map[string]int // key bytes (partition, 0, sort) by kind
	mapKeys                         map[string]int // bytes of the records' CBOR map keys, by kind
	wrappedKey, framing             int
	plaintext                       int
	open, check                     time.Duration
}

// measureDisk seeds n secrets of one 100-byte value through the service
// (from 32 writers, as concurrent clients would), then measures the data
// file, one secret's items, a compacted copy and the start-up checks.
func measureDisk(tb testing.TB, n int) diskFigures {
	ctx := context.Background()
	dir := tb.TempDir()
	path := filepath.Join(dir, "mobius.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		tb.Fatal(err)
	}
	svc := secrets.NewService(st, w, secrets.Options{Logger: bench.Quiet})
	if err := svc.CheckKey(ctx, secrets.KeyCheckInit); err != nil {
		tb.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if _, err := svc.CreateSecret(ctx, bench.Project, secrets.CreateSecretInput{Name: bench.Name("v", i), Values: value100(i)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	f := diskFigures{secrets: n, record: map[string]int{}, keyBytes: map[string]int{}, mapKeys: map[string]int{}}
	s := st.Stats()
	f.file, f.used, f.items, f.valueBytes = s.FileBytes, (s.Pages-int64(s.FreePages))*int64(s.PageSize), s.Items, s.ValueBytes

	sec, err := svc.GetSecret(ctx, bench.Project, bench.Name("v", n/2))
	if err != nil {
		tb.Fatal(err)
	}
	kinds := map[string]kv.Key{
		"secret record (S#)":      secrets.SecretItemKey(bench.Project, sec.ID),
		"its copy by name (N#)":   secrets.NameItemKey(bench.Project, sec.Name),
		"version metadata (V#)":   secrets.VersionItemKey(bench.Project, sec.ID, 1),
		"version ciphertext (C#)": secrets.CiphertextItemKey(bench.Project, sec.ID, 1),
	}
	evs, err := st.Query(ctx, kv.Query{Partition: secrets.EventPartition(bench.Project), Limit: 1})
	if err != nil || len(evs) != 1 {
		tb.Fatalf("the change events: %d items, %v", len(evs), err)
	}
	kinds["change event (E#, 30 days)"] = evs[0].Key
	for kind, k := range kinds {
		items, err := st.Get(ctx, k)
		if err != nil || len(items) != 1 {
			tb.Fatalf("%s: %d items, %v", kind, len(items), err)
		}
		f.record[kind] = len(items[0].Value)
		f.keyBytes[kind] = len(k.Partition) + 1 + len(k.Sort)
		if strings.HasSuffix(kind, "(C#)") {
			// 0x01 | uint16 length | wrapped key | 12-byte nonce | sealed | 16-byte tag
			v := items[0].Value
			f.wrappedKey = int(v[1])<<8 | int(v[2])
			f.framing = 1 + 2 + 12 + 16
			f.plaintext = len(v) - f.framing - f.wrappedKey
			continue
		}
		f.mapKeys[kind] = mapKeyBytes(tb, items[0].Value)
	}

	compact := func(name string) (used, file int64) {
		out := filepath.Join(dir, name)
		if err := st.Compact(out); err != nil {
			tb.Fatal(err)
		}
		c, err := bolt.Open(out, bolt.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close()
		cs := c.Stats()
		return (cs.Pages - int64(cs.FreePages)) * int64(cs.PageSize), cs.FileBytes
	}
	f.compacted, f.compactedFile = compact("compacted.db")

	// After the events' retention, the Sweep deletes them.
	later := time.Now().Add(secrets.EventRetention + time.Hour)
	for {
		rep, err := svc.Sweep(ctx, later)
		if err != nil {
			tb.Fatal(err)
		}
		if rep.Expired == 0 {
			break
		}
	}
	if evs, err := st.Query(ctx, kv.Query{Partition: secrets.EventPartition(bench.Project), Limit: 1}); err != nil || len(evs) != 0 {
		tb.Fatalf("after the Sweep: %d events, %v", len(evs), err)
	}
	s = st.Stats()
	f.usedNoEvents, f.itemsNoEvents, f.valueNoEvents = (s.Pages-int64(s.FreePages))*int64(s.PageSize), s.Items, s.ValueBytes
	f.compactedNoEvents, _ = compact("compacted-no-events.db")
	if err := st.Close(); err != nil {
		tb.Fatal(err)
	}

	// Start-up (of the file without its events): Open (the file checks
	// and bbolt's tx.Check), then Check on the open store (the same
	// checks, and every item decoded).
	t0 := time.Now()
	d, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	f.open = time.Since(t0)
	t0 = time.Now()
	if err := d.Check(); err != nil {
		tb.Fatal(err)
	}
	f.check = time.Since(t0)
	d.Close()
	return f
}

// mapKeyBytes counts the bytes of a CBOR record's map keys, at any depth.
func mapKeyBytes(tb testing.TB, b []byte) int {
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		tb.Fatalf("a record that is not CBOR: %v", err)
	}
	var count func(v any) int
	count = func(v any) int {
		n := 0
		switch x := v.(type) {
		case map[any]any:
			for k, e := range x {
				kb, err := cbor.Marshal(k)
				if err != nil {
					tb.Fatal(err)
				}
				n += len(kb) + count(e)
			}
		case []any:
			for _, e := range x {
				n += count(e)
			}
		}
		return n
	}
	return count(v)
}

var diskSizes = []int{10, 10_000, 100_000}

// BenchmarkBytesOnDisk reports the data file's bytes per secret of one
// 100-byte value at 10, 10,000 and 100,000 secrets: as written (file and
// pages in use), and in a compacted copy, with each secret's change event
// (kept EventRetention) and again once the Sweep deleted the events (the
// steady state); and the time of the start-up checks (Open, Check). It measures once per size, whatever b.N, and logs
// what one secret's items cost. Run it with -benchtime 1x:
//
//	go test -run '^$' -bench BytesOnDisk -benchtime 1x ./pkg/internal/bench
func BenchmarkBytesOnDisk(b *testing.B) {
	for _, n := range diskSizes {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			f := measureDisk(b, n)
			for b.Loop() {
			}
			per := func(x int64) float64 { return float64(x) / float64(n) }
			b.ReportMetric(per(f.file), "file-B/secret")
			b.ReportMetric(per(f.used), "used-B/secret")
			b.ReportMetric(per(f.compacted), "compacted-B/secret")
			b.ReportMetric(per(f.valueBytes), "value-B/secret")
			b.ReportMetric(float64(f.items)/float64(n), "items/secret")
			b.ReportMetric(per(f.usedNoEvents), "used-noevent-B/secret")
			b.ReportMetric(per(f.compactedNoEvents), "compacted-noevent-B/secret")
			b.ReportMetric(per(f.valueNoEvents), "value-noevent-B/secret")
			b.ReportMetric(float64(f.open.Microseconds())/1000, "open-ms")
			b.ReportMetric(float64(f.check.Microseconds())/1000, "check-ms")
			b.Logf("%d secrets: file %d B, pages in use %d B, compacted %d B (file %d B), %d items, %d value bytes",
				n, f.file, f.used, f.compacted, f.compactedFile, f.items, f.valueBytes)
			b.Logf("  without the events: pages in use %d B, compacted %d B, %d items, %d value bytes",
				f.usedNoEvents, f.compactedNoEvents, f.itemsNoEvents, f.valueNoEvents)
			for _, kind := range slices.Sorted(maps.Keys(f.record)) {
				v := f.record[kind]
				b.Logf("  %-26s value %4d B (map keys %3d B), key %3d B", kind, v, f.mapKeys[kind], f.keyBytes[kind])
			}
			b.Logf("  ciphertext: framing %d B, wrapped data key %d B, sealed plaintext %d B", f.framing, f.wrappedKey, f.plaintext)
			b.Logf("  start-up: Open %v, Check %v", f.open, f.check)
		})
	}
}

// The measurement runs end to end on a small store: every figure is
// there and adds up.
func TestMeasureDisk(t *testing.T) {
	f := measureDisk(t, 20)
	if f.items < 20*4 || f.valueBytes <= 0 || f.used <= 0 || f.compacted <= 0 || f.file < f.used {
		t.Errorf("store figures: %+v", f)
	}
	if f.itemsNoEvents != f.items-20 || f.valueNoEvents <= 0 || f.valueNoEvents >= f.valueBytes || f.compactedNoEvents <= 0 || f.compactedNoEvents > f.compacted {
		t.Errorf("figures without the events: %+v", f)
	}
	if len(f.record) != 5 || f.wrappedKey <= 0 || f.plaintext <= 100 {
		t.Errorf("item figures: %+v", f)
	}
	if f.record["version ciphertext (C#)"] != f.framing+f.wrappedKey+f.plaintext {
		t.Errorf("ciphertext %d B is not framing %d + wrapped key %d + plaintext %d", f.record["version ciphertext (C#)"], f.framing, f.wrappedKey, f.plaintext)
	}
	for kind, n := range f.mapKeys {
		if n <= 0 || n >= f.record[kind] {
			t.Errorf("%s: %d bytes of map keys in %d", kind, n, f.record[kind])
		}
	}
}
