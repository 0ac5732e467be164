// Package modeltest checks a store driver, through the Service, against a
// simple reference model: random sequences of create, rotate, stage,
// promote, rename (with aliases), enable, disable, destroy, delete to the
// trash, restore (under its name or another), purge (from the trash, at
// once with a delete, or by the Sweep when the retention ends), alias
// removal, the passing of time (grace windows, aliases and the trash end)
// and API-key revoke, with every observable fact compared to the model
// after each step: lists, the trash, versions and states, and what every
// kind of reference (plain, @pending, @previous, @N, an old name, the name
// of a trashed secret) resolves to. It is imported from tests only.
package modeltest

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
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
	id        string
	versions  []*mVersion // index n-1
	current   int
	pending   int
	previous  int
	prevUntil time.Time
	grace     time.Duration
	aliases   map[string]time.Time // old name -> until
}

// mTrashed is a secret in the trash.
type mTrashed struct {
	ms      *mSecret
	name    string
	purgeAt time.Time
}

type machine struct {
	ctx     context.Context
	svc     *secrets.Service
	project string
	now     time.Time
	byName  map[string]*mSecret
	trash   map[string]*mTrashed // by secret ID
	purged  []string             // IDs purged
	// tombs are the freed names whose tombstone says where their secret
	// went: name -> secret ID.
	tombs   map[string]string
	keys    map[string]string // key ID -> key string, live keys
	revoked []string          // revoked key strings
	stats   *Stats
	seq     int
}

var names = []string{"openai", "stripe", "db-main", "Slack_bot"}

// Run runs rapid checks of the Service over drivers from newDriver (one
// fresh driver per sequence) and returns what it ran.
func Run(t *testing.T, newDriver func(t *testing.T) kv.Driver) *Stats {
	st := &Stats{}
	rapid.Check(t, func(rt *rapid.T) {
		kek := make([]byte, 32)
		rand.Read(kek)
		w, err := local.New(kek)
		if err != nil {
			rt.Fatal(err)
		}
		m := &machine{
			ctx: context.Background(), project: "model", now: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC),
			byName: map[string]*mSecret{}, keys: map[string]string{}, stats: st,
			trash: map[string]*mTrashed{}, tombs: map[string]string{},
		}
		m.svc = secrets.NewService(newDriver(t), w, secrets.Options{MaxAttempts: 5, Now: func() time.Time { return m.now }})
		st.Sequences.Add(1)
		rt.Repeat(map[string]func(*rapid.T){
			"":        m.check,
			"create":  m.create,
			"rotate":  func(t *rapid.T) { m.rotate(t, false) },
			"stage":   func(t *rapid.T) { m.rotate(t, true) },
			"promote": func(t *rapid.T) { m.setState(t, secrets.ActionPromote) },
			"rename":  m.rename,
			"enable":  func(t *rapid.T) { m.setState(t, secrets.ActionEnable) },
			"disable": func(t *rapid.T) { m.setState(t, secrets.ActionDisable) },
			"destroy": func(t *rapid.T) { m.setState(t, secrets.ActionDestroy) },
			"delete":  func(t *rapid.T) { m.delete(t, false) },
			"purgeat": func(t *rapid.T) { m.delete(t, true) },
			"restore": m.restore,
			"purge":   m.purge,
			"sweep":   m.sweep,
			"unalias": m.unalias,
			"wait":    m.wait,
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

// holder returns the secret that holds name, as a name or a live alias.
func (m *machine) holder(name string) (*mSecret, bool) {
	if ms, ok := m.byName[name]; ok {
		return ms, false
	}
	for _, ms := range m.byName {
		if until, ok := ms.aliases[name]; ok && m.now.Before(until) {
			return ms, true
		}
	}
	return nil, false
}

func (m *machine) create(t *rapid.T) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	vals := m.values(t)
	grace := time.Duration(rapid.SampledFrom([]int{0, 60, 3600}).Draw(t, "grace")) * time.Second
	s, err := m.svc.CreateSecret(m.ctx, m.project, secrets.CreateSecretInput{Name: name, Values: vals, PreviousGrace: &grace})
	if h, _ := m.holder(name); h != nil {
		wantCode(t, "create "+name, err, secrets.Conflict)
		return
	}
	wantCode(t, "create "+name, err, "")
	delete(m.tombs, name)
	m.byName[name] = &mSecret{id: s.ID, versions: []*mVersion{{secrets.Enabled, vals}}, current: 1, grace: grace, aliases: map[string]time.Time{}}
}

// retire is the model of a version leaving ENABLED by a rotation, promote
// or enable.
func (m *machine) retire(ms *mSecret) {
	if ms.current == 0 {
		return
	}
	ms.versions[ms.current-1].state = secrets.Disabled
	ms.previous, ms.prevUntil = ms.current, time.Time{}
	if ms.grace > 0 {
		ms.prevUntil = m.now.Add(ms.grace)
	}
}

func (m *machine) rotate(t *rapid.T, staged bool) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	vals := m.values(t)
	replace := rapid.Bool().Draw(t, "replace_pending")
	in := secrets.UpdateSecretInput{Values: vals, ReplacePending: replace}
	if staged {
		in.Stage = secrets.Pending
	}
	_, err := m.svc.UpdateSecret(m.ctx, m.project, name, in)
	op := fmt.Sprintf("rotate %s (staged %v, replace %v)", name, staged, replace)
	ms, ok := m.byName[name]
	switch {
	case !ok:
		wantCode(t, op, err, secrets.NotFound)
		return
	case ms.pending != 0 && !replace:
		wantCode(t, op, err, secrets.Conflict)
		return
	}
	wantCode(t, op, err, "")
	if ms.pending != 0 {
		ms.versions[ms.pending-1].state = secrets.Disabled
		ms.pending = 0
	}
	n := len(ms.versions) + 1
	if staged {
		ms.versions = append(ms.versions, &mVersion{secrets.Pending, vals})
		ms.pending = n
		return
	}
	m.retire(ms)
	ms.versions = append(ms.versions, &mVersion{secrets.Enabled, vals})
	ms.current = n
}

func (m *machine) rename(t *rapid.T) {
	m.stats.Steps.Add(1)
	from := rapid.SampledFrom(names).Draw(t, "from")
	to := rapid.SampledFrom(names).Draw(t, "to")
	_, err := m.svc.UpdateSecret(m.ctx, m.project, from, secrets.UpdateSecretInput{Name: &to})
	ms, ok := m.byName[from]
	h, _ := m.holder(to)
	switch {
	case !ok:
		wantCode(t, "rename "+from, err, secrets.NotFound)
	case from == to:
		wantCode(t, "rename to itself", err, "")
	case h != nil && h != ms:
		wantCode(t, "rename into taken "+to, err, secrets.Conflict)
	default:
		wantCode(t, "rename "+from+" to "+to, err, "")
		delete(m.byName, from)
		delete(ms.aliases, to)
		delete(m.tombs, to)
		ms.aliases[from] = m.now.Add(secrets.DefaultAliasTTL)
		m.byName[to] = ms
	}
}

func (m *machine) unalias(t *rapid.T) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	alias := rapid.SampledFrom(names).Draw(t, "alias")
	_, err := m.svc.DeleteAlias(m.ctx, m.project, name, alias)
	ms, ok := m.byName[name]
	if !ok {
		wantCode(t, "unalias on "+name, err, secrets.NotFound)
		return
	}
	if until, live := ms.aliases[alias]; !live || !m.now.Before(until) {
		wantCode(t, "unalias "+alias+" of "+name, err, secrets.NotFound)
		return
	}
	wantCode(t, "unalias "+alias+" of "+name, err, "")
	delete(ms.aliases, alias)
}

// wait moves the clock on: graces and aliases end.
func (m *machine) wait(t *rapid.T) {
	m.stats.Steps.Add(1)
	d := time.Duration(rapid.SampledFrom([]int{1, 61, 3601, 8 * 24 * 3600}).Draw(t, "seconds")) * time.Second
	m.now = m.now.Add(d)
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
	target := map[string]secrets.State{secrets.ActionEnable: secrets.Enabled, secrets.ActionPromote: secrets.Enabled,
		secrets.ActionDisable: secrets.Disabled, secrets.ActionDestroy: secrets.Destroyed}[action]
	switch {
	case mv.state == target:
		wantCode(t, op+" (no-op)", err, "")
		return
	case mv.state == secrets.Destroyed:
		wantCode(t, op+" out of DESTROYED", err, secrets.Conflict)
		return
	case action == secrets.ActionPromote && mv.state != secrets.Pending:
		wantCode(t, op+" of a version not PENDING", err, secrets.Conflict)
		return
	}
	wantCode(t, op, err, "")
	if v.State != target {
		t.Fatalf("%s: returned state %s", op, v.State)
	}
	if mv.state == secrets.Pending {
		ms.pending = 0
	}
	switch {
	case target == secrets.Enabled:
		m.retire(ms)
		ms.current = n
	case ms.current == n:
		ms.current = 0
	}
	mv.state = target
	if target == secrets.Destroyed {
		mv.values = nil
		if ms.previous == n {
			ms.previous, ms.prevUntil = 0, time.Time{}
		}
	}
}

// delete moves a secret to the trash (or, with purge, purges it at once):
// its name and live aliases are free, with tombstones.
func (m *machine) delete(t *rapid.T, purge bool) {
	m.stats.Steps.Add(1)
	name := rapid.SampledFrom(names).Draw(t, "name")
	err := m.svc.DeleteSecretWith(m.ctx, m.project, name, secrets.DeleteOptions{Purge: purge})
	ms, ok := m.byName[name]
	if !ok {
		wantCode(t, "delete "+name, err, secrets.NotFound)
		return
	}
	wantCode(t, fmt.Sprintf("delete %s (purge %v)", name, purge), err, "")
	delete(m.byName, name)
	if purge {
		m.purged = append(m.purged, ms.id)
		return
	}
	m.tombs[name] = ms.id
	for alias, until := range ms.aliases {
		if m.now.Before(until) {
			m.tombs[alias] = ms.id
		}
	}
	ms.aliases = map[string]time.Time{}
	m.trash[ms.id] = &mTrashed{ms: ms, name: name, purgeAt: m.now.Add(secrets.DefaultTrashRetention)}
}

// someID draws a trashed, purged or unknown secret ID.
func (m *machine) someID(t *rapid.T) string {
	ids := []string{"sec_01HZY3Q7K8V2N4M6P8R0S2T4W6"}
	for id := range m.trash {
		ids = append(ids, id)
	}
	ids = append(ids, m.purged...)
	sort.Strings(ids)
	return rapid.SampledFrom(ids).Draw(t, "id")
}

func (m *machine) dropTrash(id string) {
	delete(m.trash, id)
	for name, of := range m.tombs {
		if of == id {
			delete(m.tombs, name)
		}
	}
}

func (m *machine) restore(t *rapid.T) {
	m.stats.Steps.Add(1)
	id := m.someID(t)
	name := rapid.SampledFrom(append([]string{""}, names...)).Draw(t, "as")
	s, err := m.svc.RestoreSecret(m.ctx, m.project, id, name)
	op := fmt.Sprintf("restore %s as %q", id, name)
	tr, ok := m.trash[id]
	if !ok {
		wantCode(t, op, err, secrets.NotFound)
		return
	}
	target := name
	if target == "" {
		target = tr.name
	}
	if h, _ := m.holder(target); h != nil {
		wantCode(t, op+" into a taken name", err, secrets.Conflict)
		return
	}
	wantCode(t, op, err, "")
	if s.ID != id || s.Name != target {
		t.Fatalf("%s: restored %s as %s", op, s.ID, s.Name)
	}
	m.dropTrash(id)
	delete(m.tombs, target)
	m.byName[target] = tr.ms
}

func (m *machine) purge(t *rapid.T) {
	m.stats.Steps.Add(1)
	id := m.someID(t)
	err := m.svc.PurgeTrash(m.ctx, m.project, id)
	if _, ok := m.trash[id]; !ok {
		wantCode(t, "purge "+id, err, secrets.NotFound)
		return
	}
	wantCode(t, "purge "+id, err, "")
	m.dropTrash(id)
	m.purged = append(m.purged, id)
}

// sweep runs the Sweep until it has nothing left to do: the trash whose
// retention ended is purged.
func (m *machine) sweep(t *rapid.T) {
	m.stats.Steps.Add(1)
	for i := 0; ; i++ {
		rep, err := m.svc.Sweep(m.ctx, m.now)
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if rep.Purged == 0 {
			break
		}
		if i > len(m.trash)+1 {
			t.Fatalf("sweep keeps purging: %+v", rep)
		}
	}
	for id, tr := range m.trash {
		if !m.now.Before(tr.purgeAt) {
			m.dropTrash(id)
			m.purged = append(m.purged, id)
		}
	}
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

// expect is the version a selector reads in the model (0: none).
func (m *machine) expect(ms *mSecret, sel secrets.Selector) int {
	graced := ms.previous != 0 && m.now.Before(ms.prevUntil)
	switch sel.Kind {
	case secrets.SelectCurrent:
		return ms.current
	case secrets.SelectPending:
		return ms.pending
	case secrets.SelectPrevious:
		if graced {
			return ms.previous
		}
		return 0
	}
	if n := sel.Number; n != 0 && (n == ms.current || n == ms.pending || (n == ms.previous && graced)) {
		return n
	}
	return 0
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
	trash, more, err := m.svc.ListTrash(ctx, m.project, "", 1000)
	if err != nil || more {
		t.Fatalf("trash: %v (more=%v)", err, more)
	}
	got, want = nil, nil
	for _, ts := range trash {
		got = append(got, ts.Secret.ID)
		if tr := m.trash[ts.Secret.ID]; tr == nil || ts.Secret.Name != tr.name || !ts.PurgeAt.Equal(tr.purgeAt) {
			t.Fatalf("trash holds %s as %q until %v; model %+v", ts.Secret.ID, ts.Secret.Name, ts.PurgeAt, tr)
		}
	}
	for id := range m.trash {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("trash = %v, model has %v", got, want)
	}
	for id := range m.trash {
		if _, err := m.svc.GetSecret(ctx, m.project, id); secrets.ErrorCode(err) != secrets.NotFound || !strings.Contains(secrets.ErrorMessage(err), "trash") {
			t.Fatalf("get of trashed %s: %v", id, err)
		}
	}
	for _, id := range m.purged {
		if _, _, err := m.svc.ListVersions(ctx, m.project, id, 0, 10); secrets.ErrorCode(err) != secrets.NotFound {
			t.Fatalf("versions of purged %s: %v", id, err)
		}
	}
	var wants []secrets.Want
	for _, name := range names { // every name: held, an alias, a tombstone or free
		wants = append(wants, secrets.Want{Name: name})
	}
	for name, ms := range m.byName {
		s, err := m.svc.GetSecret(ctx, m.project, name)
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if s.ID != ms.id || s.CurrentVersion != ms.current || s.PendingVersion != ms.pending || s.LatestVersion != len(ms.versions) {
			t.Fatalf("get %s: id %s current %d pending %d latest %d; model %s %d %d %d", name, s.ID, s.CurrentVersion, s.PendingVersion, s.LatestVersion, ms.id, ms.current, ms.pending, len(ms.versions))
		}
		vs, _, err := m.svc.ListVersions(ctx, m.project, name, 0, 1000)
		if err != nil {
			t.Fatalf("versions %s: %v", name, err)
		}
		if len(vs) != len(ms.versions) {
			t.Fatalf("versions %s: %d, model %d", name, len(vs), len(ms.versions))
		}
		enabled, pending := 0, 0
		for i, v := range vs {
			n := len(ms.versions) - i
			mv := ms.versions[n-1]
			if v.Number != n || v.State != mv.state {
				t.Fatalf("%s version %d: number %d state %s; model %s", name, n, v.Number, v.State, mv.state)
			}
			switch v.State {
			case secrets.Enabled:
				enabled++
			case secrets.Pending:
				pending++
			}
		}
		if enabled > 1 || pending > 1 {
			t.Fatalf("%s: %d ENABLED and %d PENDING versions", name, enabled, pending)
		}
		wants = append(wants, secrets.Want{Name: name}, secrets.Want{Name: name, Sel: secrets.Selector{Kind: secrets.SelectPending}},
			secrets.Want{Name: name, Sel: secrets.Selector{Kind: secrets.SelectPrevious}})
		for n := 1; n <= len(ms.versions)+1; n++ {
			wants = append(wants, secrets.Want{Name: name, Sel: secrets.Selector{Kind: secrets.SelectNumber, Number: n}})
		}
		for alias := range ms.aliases {
			wants = append(wants, secrets.Want{Name: alias})
		}
	}
	wants = append(wants, secrets.Want{Name: "never-created"})
	rv, err := m.svc.RevealAll(ctx, m.project, wants, nil)
	if err != nil {
		t.Fatalf("reveal: %v", err)
	}
	for _, w := range wants {
		r := rv[w]
		ms, _ := m.holder(w.Name)
		if id, ok := m.tombs[w.Name]; ok && ms == nil {
			// A store may drop an expired tombstone any time: then the
			// name is simply unknown.
			if r != nil && (r.Secret.ID != id || r.Version != nil || !strings.Contains(r.Problem, "trash")) {
				t.Fatalf("reveal %s, the name of trashed %s: %+v", w.Name, id, r)
			}
			continue
		}
		if ms == nil {
			if r != nil {
				t.Fatalf("reveal %s found secret %s, which the model does not hold under that name", w.Name, r.Secret.ID)
			}
			continue
		}
		if r == nil || r.Secret.ID != ms.id {
			t.Fatalf("reveal %s@%s: missing or another secret", w.Name, w.Sel)
		}
		n := m.expect(ms, w.Sel)
		if n == 0 {
			if r.Version != nil || r.Problem == "" {
				t.Fatalf("reveal %s@%s: version %v (problem %q), model has none", w.Name, w.Sel, r.Version, r.Problem)
			}
			continue
		}
		if r.Version == nil || r.Version.Number != n || !mapsEqual(r.Values, ms.versions[n-1].values) {
			t.Fatalf("reveal %s@%s: does not match model version %d (%q)", w.Name, w.Sel, n, r.Problem)
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
