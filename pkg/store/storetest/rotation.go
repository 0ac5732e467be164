package storetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// clocked returns a Service on e's store and keys whose clock is *now.
func (e *Env) clocked(now *time.Time) *secrets.Service {
	return secrets.NewService(e.KV, e.Keys, secrets.Options{Now: func() time.Time { return *now }, Logger: quietLogger()})
}

func revealOne(t *testing.T, e *Env, svc *secrets.Service, name string, sel secrets.Selector) *secrets.Revealed {
	t.Helper()
	out, err := svc.RevealAll(e.Ctx, e.Project, []secrets.Want{{Name: name, Sel: sel}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out[secrets.Want{Name: name, Sel: sel}]
}

var (
	selPending  = secrets.Selector{Kind: secrets.SelectPending}
	selPrevious = secrets.Selector{Kind: secrets.SelectPrevious}
)

func selN(n int) secrets.Selector { return secrets.Selector{Kind: secrets.SelectNumber, Number: n} }

// testStagedRotation: a staged version is PENDING, unseen by plain
// references, read by @pending; one PENDING at a time unless replaced;
// promote makes it ENABLED and the old one DISABLED at once.
func testStagedRotation(t *testing.T, e *Env) {
	now := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	grace := time.Hour
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "hook", Values: map[string]string{"k": "old"}, PreviousGrace: &grace}); err != nil {
		t.Fatal(err)
	}
	s, err := svc.UpdateSecret(e.Ctx, e.Project, "hook", secrets.UpdateSecretInput{Values: map[string]string{"k": "new"}, Stage: secrets.Pending})
	if err != nil || s.PendingVersion != 2 || s.CurrentVersion != 1 || s.LatestVersion != 2 {
		t.Fatalf("staged: %+v, %v", s, err)
	}
	if st := e.states("hook"); st != "ENPE" {
		t.Fatalf("states after staging: %s", st)
	}
	if r := revealOne(t, e, svc, "hook", secrets.Selector{}); r.Version.Number != 1 || r.Values["k"] != "old" {
		t.Fatalf("a plain reference sees the PENDING version")
	}
	if r := revealOne(t, e, svc, "hook", selPending); r.Version == nil || r.Version.Number != 2 || r.Values["k"] != "new" || r.Version.State != secrets.Pending {
		t.Fatalf("@pending: %+v", r)
	}
	_, err = svc.UpdateSecret(e.Ctx, e.Project, "hook", secrets.UpdateSecretInput{Values: map[string]string{"k": "other"}, Stage: secrets.Pending})
	WantCode(t, "a second PENDING version", err, secrets.Conflict)
	_, err = svc.UpdateSecret(e.Ctx, e.Project, "hook", secrets.UpdateSecretInput{Values: map[string]string{"k": "other"}})
	WantCode(t, "a rotation over a PENDING version", err, secrets.Conflict)
	s, err = svc.UpdateSecret(e.Ctx, e.Project, "hook", secrets.UpdateSecretInput{Values: map[string]string{"k": "newer"}, Stage: secrets.Pending, ReplacePending: true})
	if err != nil || s.PendingVersion != 3 {
		t.Fatalf("replace_pending: %+v, %v", s, err)
	}
	if st := e.states("hook"); st != "ENDIPE" {
		t.Fatalf("states after replacing the PENDING version: %s", st)
	}
	_, _, err = svc.ChangeVersionState(e.Ctx, e.Project, "hook", "1", secrets.ActionPromote, nil)
	WantCode(t, "promote an ENABLED version (no-op)", err, "")
	_, _, err = svc.ChangeVersionState(e.Ctx, e.Project, "hook", "2", secrets.ActionPromote, nil)
	WantCode(t, "promote a DISABLED version", err, secrets.Conflict)
	stale := s.Revision - 1
	_, _, err = svc.ChangeVersionState(e.Ctx, e.Project, "hook", "3", secrets.ActionPromote, &stale)
	WantCode(t, "promote with a stale If-Match", err, secrets.PreconditionFailed)
	v, s, err := svc.ChangeVersionState(e.Ctx, e.Project, "hook", "3", secrets.ActionPromote, nil)
	if err != nil || v.State != secrets.Enabled || s.CurrentVersion != 3 || s.PendingVersion != 0 || s.PreviousVersion != 1 || !s.PreviousUntil.Equal(now.Add(grace)) {
		t.Fatalf("promote: %+v %+v, %v", v, s, err)
	}
	if st := e.states("hook"); st != "DIDIEN" {
		t.Fatalf("states after promote: %s", st)
	}
	if r := revealOne(t, e, svc, "hook", selPending); r.Version != nil || !strings.Contains(r.Problem, "no PENDING") {
		t.Fatalf("@pending after promote: %+v", r)
	}
}

// testGraceAndPins: @previous reads the version ENABLED before, until the
// grace ends; @N reads only the ENABLED, PENDING or graced previous one,
// and says the state of any other.
func testGraceAndPins(t *testing.T, e *Env) {
	now := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	grace := 24 * time.Hour
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "sign", Values: map[string]string{"k": "v1"}, PreviousGrace: &grace}); err != nil {
		t.Fatal(err)
	}
	if r := revealOne(t, e, svc, "sign", selPrevious); r.Version != nil || !strings.Contains(r.Problem, "no previous") {
		t.Fatalf("@previous before any rotation: %+v", r)
	}
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "sign", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sel  secrets.Selector
		want string // "" for nothing
		says string
	}{
		{secrets.Selector{}, "v2", ""}, {selPrevious, "v1", ""}, {selN(1), "v1", ""}, {selN(2), "v2", ""},
		{selPending, "", "no PENDING"}, {selN(3), "", "not found"},
	} {
		r := revealOne(t, e, svc, "sign", c.sel)
		if c.want == "" {
			if r.Version != nil || !strings.Contains(r.Problem, c.says) {
				t.Fatalf("@%s in the grace: %+v", c.sel, r)
			}
		} else if r.Version == nil || r.Values["k"] != c.want {
			t.Fatalf("@%s in the grace: %+v, want %s", c.sel, r, c.want)
		}
	}
	now = now.Add(grace)
	if r := revealOne(t, e, svc, "sign", selPrevious); r.Version != nil || !strings.Contains(r.Problem, "grace ended") {
		t.Fatalf("@previous after the grace: %+v", r)
	}
	if r := revealOne(t, e, svc, "sign", selN(1)); r.Version != nil || !strings.Contains(r.Problem, "DISABLED") {
		t.Fatalf("@1 after the grace: %+v", r)
	}
	// Rolling back (enable 1) makes 2 the previous, with a new grace.
	if _, _, err := svc.ChangeVersionState(e.Ctx, e.Project, "sign", "1", secrets.ActionEnable, nil); err != nil {
		t.Fatal(err)
	}
	if r := revealOne(t, e, svc, "sign", selPrevious); r.Version == nil || r.Values["k"] != "v2" {
		t.Fatalf("@previous after a rollback: %+v", r)
	}
	// Destroying the previous version ends @previous for good.
	if _, _, err := svc.ChangeVersionState(e.Ctx, e.Project, "sign", "2", secrets.ActionDestroy, nil); err != nil {
		t.Fatal(err)
	}
	if r := revealOne(t, e, svc, "sign", selN(2)); r.Version != nil || !strings.Contains(r.Problem, "DESTROYED") {
		t.Fatalf("@2 after destroy: %+v", r)
	}
	// With no grace, @previous never reads.
	zero := time.Duration(0)
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "sign", secrets.UpdateSecretInput{PreviousGrace: &zero, Values: map[string]string{"k": "v3"}}); err != nil {
		t.Fatal(err)
	}
	if r := revealOne(t, e, svc, "sign", selPrevious); r.Version != nil || !strings.Contains(r.Problem, "no grace") {
		t.Fatalf("@previous with no grace: %+v", r)
	}
	big := 8 * 24 * time.Hour
	_, err := svc.UpdateSecret(e.Ctx, e.Project, "sign", secrets.UpdateSecretInput{PreviousGrace: &big})
	WantCode(t, "a grace over 7 days", err, secrets.Invalid)
}

// testConsumers: resolutions mark each version's last use; a version read
// within the last hour is not disabled or destroyed without force, and the
// refusal names its last consumer; consumers group the audit.
func testConsumers(t *testing.T, e *Env) {
	now := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	s := e.create(e.Project, "db")
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "db", secrets.UpdateSecretInput{Values: map[string]string{"k": "two"}}); err != nil {
		t.Fatal(err)
	}
	read := func(version int, run, step string) {
		t.Helper()
		r := &secrets.Resolution{Project: e.Project, SecretID: s.ID, SecretName: "db", Version: version, Keys: []string{"k"},
			GrantID: "grt_01J0000000000000000000000A", KeyID: "key_01J0000000000000000000000A", Run: json.RawMessage(run), Step: json.RawMessage(step)}
		if err := svc.RecordResolutions(e.Ctx, []*secrets.Resolution{r}); err != nil {
			t.Fatal(err)
		}
	}
	read(1, `{"loop":"billing"}`, `{"step":"charge"}`)
	read(1, `{"loop":"billing"}`, `{"step":"charge"}`)
	read(2, `{"loop":"reports"}`, `{"step":"export"}`)
	v, _, err := svc.GetVersion(e.Ctx, e.Project, "db", "1")
	if err != nil || !v.LastResolvedAt.Equal(now) {
		t.Fatalf("last_resolved_at of version 1: %v, %v", v.LastResolvedAt, err)
	}
	_, _, err = svc.ChangeVersionState(e.Ctx, e.Project, "db", "1", secrets.ActionDestroy, nil)
	WantCode(t, "destroy a version read a moment ago", err, secrets.Conflict)
	if msg := secrets.ErrorMessage(err); !strings.Contains(msg, "billing") || !strings.Contains(msg, "force") {
		t.Fatalf("the refusal does not name the last consumer and the way out: %s", msg)
	}
	cons, _, err := svc.Consumers(e.Ctx, e.Project, "db", now.Add(-time.Hour))
	if err != nil || len(cons) != 2 {
		t.Fatalf("consumers: %+v, %v", cons, err)
	}
	for _, vc := range cons {
		if len(vc.Consumers) != 1 || !vc.LastResolvedAt.Equal(now) {
			t.Fatalf("consumers of version %d: %+v", vc.Version, vc)
		}
		if vc.Version == 1 && (vc.Consumers[0].Count != 2 || string(vc.Consumers[0].Run) != `{"loop":"billing"}`) {
			t.Fatalf("consumers of version 1: %+v", vc.Consumers[0])
		}
	}
	now = now.Add(secrets.RecentUse)
	if _, _, err := svc.ChangeVersionState(e.Ctx, e.Project, "db", "1", secrets.ActionDestroy, nil); err != nil {
		t.Fatalf("destroy an hour after its last use: %v", err)
	}
	if _, _, err := svc.ChangeVersionStateWith(e.Ctx, e.Project, "db", "2", secrets.ActionDisable, secrets.ActionOptions{Force: true}); err != nil {
		t.Fatalf("disable with force: %v", err)
	}
	if cons, _, _ := svc.Consumers(e.Ctx, e.Project, "db", now); len(cons) != 2 || len(cons[0].Consumers) != 0 {
		t.Fatalf("consumers since now: %+v", cons)
	}
}
