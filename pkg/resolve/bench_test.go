package resolve_test

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkInvokeLargeInput decodes and re-encodes a ~1 MB input that
// holds one reference: the cost of reading the event and the input.
func BenchmarkInvokeLargeInput(b *testing.B) {
	e := mustOpen(b, nil)
	e.seed(b)
	var in strings.Builder
	in.WriteString(`{"project":"acme","input":{"ref":"${secret:db.user}","items":[`)
	for i := 0; in.Len() < 1<<20-200; i++ {
		if i > 0 {
			in.WriteString(",")
		}
		fmt.Fprintf(&in, `{"id":%d,"name":"item \u00e9 %d","tags":["a","b\n"],"price":%d.50,"ok":true}`, i, i, i)
	}
	in.WriteString(`]}}`)
	payload := []byte(in.String())
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.r.Invoke(e.ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
}
