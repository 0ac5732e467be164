package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// A warm resolve (its grant verified once, its data keys cached, its
// versions' last use recorded) commits once, the audit, and so waits for
// one fsync, which concurrent resolves share through the embedded store's
// group commit; a first resolve may also record the versions' last use.
func TestWarmResolveCommitsOnlyTheAudit(t *testing.T) {
	ctx := context.Background()
	st := testenv.Bolt(t)
	w := testenv.LocalKeys(t)
	rec := &recorder{Driver: st}
	svc := secrets.NewService(rec, w, secrets.Options{Logger: Quiet})
	by, _, err := svc.CreateAPIKey(ctx, Project, "runner", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"db", "token", "webhook"}
	for _, n := range names {
		if _, err := svc.CreateSecret(ctx, Project, secrets.CreateSecretInput{Name: n, Values: map[string]string{"k": "v-" + n}}); err != nil {
			t.Fatal(err)
		}
	}
	_, grant, err := svc.MintGrant(ctx, Project, by, secrets.MintGrantInput{Secrets: names})
	if err != nil {
		t.Fatal(err)
	}
	ev := resolve.Event{Grant: grant, Input: json.RawMessage(`{"a":"${secret:db.k}","b":"${secret:token.k}","c":["${secret:webhook.k}"]}`)}
	r := resolve.New(svc, Quiet)
	for call := range 3 {
		rec.mu.Lock()
		rec.commits = nil
		rec.mu.Unlock()
		res, err := r.Resolve(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Resolved) != 3 {
			t.Fatalf("call %d: %d references resolved", call, len(res.Resolved))
		}
		if call == 0 {
			continue // cold: the last use of each version is recorded too
		}
		rec.mu.Lock()
		commits := rec.commits
		rec.mu.Unlock()
		if len(commits) != 1 {
			t.Fatalf("warm call %d: %d commits, want 1 (the audit)", call, len(commits))
		}
		for _, op := range commits[0] {
			if !strings.HasPrefix(op.Item.Key.Partition, "A#") || !strings.HasPrefix(op.Item.Key.Sort, "R#") {
				t.Errorf("warm call %d commits %s, not an audit record", call, op.Item.Key)
			}
		}
		if len(commits[0]) != 3 {
			t.Errorf("warm call %d: %d audit records, want 3 (one a secret read)", call, len(commits[0]))
		}
	}
}
