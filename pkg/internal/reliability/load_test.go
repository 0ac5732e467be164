package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Writers rotating, churners creating and deleting, readers paging,
// listing versions and resolving, all at once on bolt: no acknowledged
// version lost, no number given twice, never two ENABLED versions, and
// pages never skip or repeat a secret that nobody touches.
func TestLoadInvariants(t *testing.T) {
	duration := envDuration("SOAK_DURATION", 3*time.Second)
	e := newBoltEnv(t)
	const base = "/v1/projects/acme/secrets"
	var stable []string
	for i := 0; i < 30; i++ {
		n := fmt.Sprintf("s%03d", i*3)
		stable = append(stable, n)
		e.create(n, map[string]string{"k": "stable"})
	}
	hot := []string{"h0", "h1", "h2", "h3"}
	var mu sync.Mutex
	written := map[string]map[string]bool{} // name → values written (for resolve)
	type ackV struct {
		n      int
		digest string
	}
	acks := map[string][]ackV{}
	for _, h := range hot {
		v := map[string]string{"k": h + "-0"}
		e.create(h, v)
		written[h] = map[string]bool{h + "-0": true}
		acks[h] = []ackV{{1, secrets.Digest(v)}}
	}
	rv := resolve.New(e.svc, e.logger)
	grant := e.grant("", hot...)
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var ops, rotations, pages, snapshots, resolves atomic.Int64
	var wg sync.WaitGroup
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		cancel()
	}
	// Writers: two per hot secret.
	for w := 0; w < 2*len(hot); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			h := hot[w%len(hot)]
			for i := 0; ctx.Err() == nil; i++ {
				v := map[string]string{"k": fmt.Sprintf("%s-w%d-%d", h, w, i)}
				mu.Lock()
				written[h][v["k"]] = true
				mu.Unlock()
				r := e.do("PATCH", base+"/"+h, map[string]any{"values": v})
				ops.Add(1)
				if r.Status != 200 {
					fail("rotate %s: %d %s", h, r.Status, r.Body)
					return
				}
				var s api.Secret
				json.Unmarshal(r.Body, &s)
				mu.Lock()
				acks[h] = append(acks[h], ackV{s.LatestVersion, secrets.Digest(v)})
				mu.Unlock()
				rotations.Add(1)
			}
		}(w)
	}
	// Churn: secrets created and deleted between the stable names.
	for c := 0; c < 2; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				n := fmt.Sprintf("s%03d-c%d", (i*7)%90, c)
				if r := e.do("POST", base, map[string]any{"name": n, "values": map[string]string{"k": "churn"}}); r.Status != 201 {
					fail("churn create %s: %d %s", n, r.Status, r.Body)
					return
				}
				if r := e.do("DELETE", base+"/"+n, nil); r.Status != 204 {
					fail("churn delete %s: %d %s", n, r.Status, r.Body)
					return
				}
				ops.Add(2)
			}
		}(c)
	}
	// Readers: page through every secret; snapshot versions; resolve.
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for ctx.Err() == nil {
				seen := map[string]int{}
				token := ""
				for {
					q := url.Values{"limit": {"7"}}
					if token != "" {
						q.Set("page_token", token)
					}
					resp := e.do("GET", base+"?"+q.Encode(), nil)
					ops.Add(1)
					if resp.Status != 200 {
						fail("list: %d %s", resp.Status, resp.Body)
						return
					}
					var page api.SecretList
					json.Unmarshal(resp.Body, &page)
					for _, s := range page.Secrets {
						seen[s.Name]++
					}
					pages.Add(1)
					if token = page.NextPageToken; token == "" {
						break
					}
				}
				for _, n := range stable {
					if seen[n] != 1 {
						fail("a full listing saw stable secret %s %d times", n, seen[n])
						return
					}
				}
				for _, h := range hot {
					resp := e.do("GET", base+"/"+h+"/versions?limit=1000", nil)
					ops.Add(1)
					var vl api.VersionList
					json.Unmarshal(resp.Body, &vl)
					enabled, nums := 0, map[int]bool{}
					for _, v := range vl.Versions {
						if nums[v.Number] {
							fail("%s: version %d listed twice", h, v.Number)
						}
						nums[v.Number] = true
						if v.State == "ENABLED" {
							enabled++
						}
					}
					if enabled != 1 {
						fail("%s: %d ENABLED versions in one snapshot", h, enabled)
					}
					snapshots.Add(1)
				}
				res, err := rv.Resolve(ctx, resolve.Event{Grant: grant, Input: json.RawMessage(`["${secret:h0.k}","${secret:h1.k}","${secret:h2.k}","${secret:h3.k}"]`)})
				ops.Add(1)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					fail("resolve: %v", err)
					return
				}
				var out []string
				json.Unmarshal(res.Output, &out)
				mu.Lock()
				for i, v := range out {
					if !written[hot[i]][v] {
						fail("resolve gave %s a value never written", hot[i])
					}
				}
				mu.Unlock()
				resolves.Add(1)
			}
		}(r)
	}
	wg.Wait()
	elapsed := duration
	lost, dup := 0, 0
	for _, h := range hot {
		nums := map[int]bool{}
		for _, a := range acks[h] {
			if nums[a.n] {
				dup++
				t.Errorf("%s: version %d acknowledged twice", h, a.n)
			}
			nums[a.n] = true
			v, _, err := e.svc.GetVersion(context.Background(), "acme", h, fmt.Sprint(a.n))
			if err != nil || v.SHA256 != a.digest {
				lost++
				t.Errorf("%s v%d: acknowledged but %v / digest %v", h, a.n, err, v)
			}
		}
	}
	t.Logf("load: %s, %d ops (%.0f ops/s): %d rotations, %d list pages, %d version snapshots, %d resolves; %d lost, %d duplicate numbers, never two ENABLED, no page skipped or repeated a stable secret",
		elapsed, ops.Load(), float64(ops.Load())/elapsed.Seconds(), rotations.Load(), pages.Load(), snapshots.Load(), resolves.Load(), lost, dup)
	if rotations.Load() == 0 || pages.Load() == 0 || resolves.Load() == 0 {
		t.Fatal("the load ran no rotations, pages or resolves")
	}
}
