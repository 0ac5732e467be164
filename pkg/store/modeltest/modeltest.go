// Package modeltest checks a Store, through the Service, against a simple
// reference model: random sequences of create, rotate, rename, enable,
// disable, destroy, delete and API-key revoke, with every observable fact
// compared to the model after each step. It is imported from tests only.
package modeltest

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"pgregory.net/rapid"
)

// Stats counts what Run exercised, for reports.
type Stats struct {
	Sequences atomic.Int64
	Steps     atomic.Int64
}

type mVersion struct {
	state  secrets.State
	values map[string]string
}

type mSecret struct {
	id       string
	versions []*mVersion // index n-1
	current  int
}

type machine struct {
	ctx     context.Context
	svc     *secrets.Service
	project string
	byName  map[string]*mSecret
	keys    map[string]string // key ID -> key string, live keys
	revoked []string          // revoked key strings
	stats   *Stats
	seq     int
}

var names = []string{"openai", "stripe", "db-main", "Slack_bot"}

// Run runs rapid checks of the Service over stores from newStore (one fresh
// store per sequence) and returns what it ran.
func Run(t *testing.T, newStore func(t *testing.T) secrets.Store) *Stats {
	st := &Stats{}
	rapid.Check(t, func(rt *rapid.T) {
		kek := make([]byte, 32)
		rand.Read(kek)
		w, err := local.New(kek)
		if err != nil {
			rt.Fatal(err)
		}
		m := &machine{
			ctx: context.Background(), project: "model",
			svc:    secrets.NewService(newStore(t), w, secrets.Options{MaxAttempts: 5}),
			byName: map[string]*mSecret{}, keys: map[string]string{}, stats: st,
		}
		st.Sequences.Add(1)
		rt.Repeat(map[string]func(*rapid.T){
			"":        m.check,
			"create":  m.create,
			"rotate":  m.rotate,
			"rename":  m.rename,
			"enable":  func(t *rapid.T) { m.setState(t, secrets.ActionEnable) },
			"disable": func(t *rapid.T) { m.setState(t, secrets.ActionDisable) },
			"destroy": func(t *rapid.T) { m.setState(t, secrets.ActionDestroy) },
			"delete":  m.delete,
			"key":     m.key,
			"revoke":  m.revoke,
		})
	})
	t.Logf("model-based: %d sequences, %d steps", st.Sequences.Load(), st.Steps.Load())
	return st
}

func (m *machine) values(t *rapid.T) map[string]string {
	m.seq++
	n := rapid.IntRange(1, 3).Draw(t, "nkeys")
	v := map[string]string{}
	for i := 0; i < n; i++ {
		v[fmt.Sprintf("k%d", i)] = fmt.Sprintf("model-value-%d-%d", m.seq, i)
	}
	return v
}

func wantCode(t *rapid.T, op string, err error, want secrets.Code) {
	if got := secrets.ErrorCode(err); got != want {
		t.Fatalf("%s: error code %q (%v), model expects %q", op, got, err, want)
	}
}

func (m *machine) create(t *rapid.T) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	vals := m.values(t)
	s, err := m.svc.CreateSecret(m.ctx, m.project, secrets.CreateSecretInput{Name: name, Values: vals})
	if _, taken := m.byName[name]; taken {
		wantCode(t, "create "+name, err, secrets.Conflict)
		return
	}
	wantCode(t, "create "+name, err, "")
	m.byName[name] = &mSecret{id: s.ID, versions: []*mVersion{{secrets.Enabled, vals}}, current: 1}
}

func (m *machine) rotate(t *rapid.T) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	vals := m.values(t)
	_, err := m.svc.UpdateSecret(m.ctx, m.project, name, secrets.UpdateSecretInput{Values: vals})
	ms, ok := m.byName[name]
	if !ok {
		wantCode(t, "rotate "+name, err, secrets.NotFound)
		return
	}
	wantCode(t, "rotate "+name, err, "")
	if ms.current != 0 {
		ms.versions[ms.current-1].state = secrets.Disabled
	}
	ms.versions = append(ms.versions, &mVersion{secrets.Enabled, vals})
	ms.current = len(ms.versions)
}

func (m *machine) rename(t *rapid.T) {
	m.stats.Steps.Add(1)
	from := rapid.SampledFrom(names).Draw(t, "from")
	to := rapid.SampledFrom(names).Draw(t, "to")
	_, err := m.svc.UpdateSecret(m.ctx, m.project, from, secrets.UpdateSecretInput{Name: &to})
	ms, ok := m.byName[from]
	switch {
	case !ok:
		wantCode(t, "rename "+from, err, secrets.NotFound)
	case from == to:
		wantCode(t, "rename to itself", err, "")
	case m.byName[to] != nil:
		wantCode(t, "rename into taken "+to, err, secrets.Conflict)
	default:
		wantCode(t, "rename "+from+" to "+to, err, "")
		delete(m.byName, from)
		m.byName[to] = ms
	}
}

func (m *machine) setState(t *rapid.T, action string) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	ms, ok := m.byName[name]
	n := 1
	if ok {
		n = rapid.IntRange(1, len(ms.versions)+1).Draw(t, "version")
	}
	v, _, err := m.svc.ChangeVersionState(m.ctx, m.project, name, fmt.Sprint(n), action, nil)
	op := fmt.Sprintf("%s %s/%d", action, name, n)
	if !ok || n > len(ms.versions) {
		wantCode(t, op, err, secrets.NotFound)
		return
	}
	mv := ms.versions[n-1]
	target := map[string]secrets.State{secrets.ActionEnable: secrets.Enabled, secrets.ActionDisable: secrets.Disabled, secrets.ActionDestroy: secrets.Destroyed}[action]
	if mv.state == target {
		wantCode(t, op+" (no-op)", err, "")
		return
	}
	if mv.state == secrets.Destroyed {
		wantCode(t, op+" out of DESTROYED", err, secrets.Conflict)
		return
	}
	wantCode(t, op, err, "")
	if v.State != target {
		t.Fatalf("%s: returned state %s", op, v.State)
	}
	if target == secrets.Enabled {
		if ms.current != 0 {
			ms.versions[ms.current-1].state = secrets.Disabled
		}
		ms.current = n
	} else if ms.current == n {
		ms.current = 0
	}
	mv.state = target
	if target == secrets.Destroyed {
		mv.values = nil
	}
}

func (m *machine) delete(t *rapid.T) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	err := m.svc.DeleteSecret(m.ctx, m.project, name, nil)
	if _, ok := m.byName[name]; !ok {
		wantCode(t, "delete "+name, err, secrets.NotFound)
		return
	}
	wantCode(t, "delete "+name, err, "")
	delete(m.byName, name)
}

func (m *machine) key(t *rapid.T) {
	m.stats.Steps.Add(1)
	k, key, err := m.svc.CreateAPIKey(m.ctx, m.project, "model", []string{secrets.ScopeRead})
	wantCode(t, "create key", err, "")
	m.keys[k.ID] = key
}

func (m *machine) revoke(t *rapid.T) {
	m.stats.Steps.Add(1)
	if len(m.keys) == 0 {
		err := m.svc.RevokeAPIKey(m.ctx, m.project, "key_01HZY3Q7K8V2N4M6P8R0S2T4W6")
		wantCode(t, "revoke unknown key", err, secrets.NotFound)
		return
	}
	ids := make([]string, 0, len(m.keys))
	for id := range m.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	id := rapid.SampledFrom(ids).Draw(t, "key")
	wantCode(t, "revoke key", m.svc.RevokeAPIKey(m.ctx, m.project, id), "")
	m.revoked = append(m.revoked, m.keys[id])
	delete(m.keys, id)
}

// check compares everything observable with the model.
func (m *machine) check(t *rapid.T) {
	ctx := m.ctx
	list, more, err := m.svc.ListSecrets(ctx, m.project, secrets.ListQuery{Limit: 100})
	if err != nil || more {
		t.Fatalf("list: %v (more=%v)", err, more)
	}
	var got, want []string
	for _, s := range list {
		got = append(got, s.Name)
	}
	for n := range m.byName {
		want = append(want, n)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("list = %v, model has %v", got, want)
	}
	var reveal []string
	for name, ms := range m.byName {
		s, err := m.svc.GetSecret(ctx, m.project, name)
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if s.ID != ms.id || s.CurrentVersion != ms.current || s.LatestVersion != len(ms.versions) {
			t.Fatalf("get %s: id %s current %d latest %d; model %s %d %d", name, s.ID, s.CurrentVersion, s.LatestVersion, ms.id, ms.current, len(ms.versions))
		}
		vs, _, err := m.svc.ListVersions(ctx, m.project, name, 0, 1000)
		if err != nil {
			t.Fatalf("versions %s: %v", name, err)
		}
		if len(vs) != len(ms.versions) {
			t.Fatalf("versions %s: %d, model %d", name, len(vs), len(ms.versions))
		}
		enabled := 0
		for i, v := range vs {
			n := len(ms.versions) - i
			mv := ms.versions[n-1]
			if v.Number != n || v.State != mv.state {
				t.Fatalf("%s version %d: number %d state %s; model %s", name, n, v.Number, v.State, mv.state)
			}
			if v.State == secrets.Enabled {
				enabled++
			}
		}
		if enabled > 1 {
			t.Fatalf("%s: %d ENABLED versions", name, enabled)
		}
		reveal = append(reveal, name)
	}
	reveal = append(reveal, "never-created")
	rv, err := m.svc.Reveal(ctx, m.project, reveal)
	if err != nil {
		t.Fatalf("reveal: %v", err)
	}
	if _, ok := rv["never-created"]; ok {
		t.Fatal("reveal found a secret that does not exist")
	}
	for name, ms := range m.byName {
		r := rv[name]
		if r == nil {
			t.Fatalf("reveal %s: missing", name)
		}
		if ms.current == 0 {
			if r.Version != nil {
				t.Fatalf("reveal %s: version %d, model has none ENABLED", name, r.Version.Number)
			}
			continue
		}
		if r.Version == nil || r.Version.Number != ms.current || !mapsEqual(r.Values, ms.versions[ms.current-1].values) {
			t.Fatalf("reveal %s: does not match model version %d", name, ms.current)
		}
	}
	for id, key := range m.keys {
		if k, err := m.svc.Authenticate(ctx, key); err != nil || k.ID != id {
			t.Fatalf("live key %s does not authenticate: %v", id, err)
		}
	}
	for _, key := range m.revoked {
		if _, err := m.svc.Authenticate(ctx, key); secrets.ErrorCode(err) != secrets.Unauthorized {
			t.Fatalf("revoked key authenticates: %v", err)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
