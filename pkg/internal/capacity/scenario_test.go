package capacity_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const project = "acme"

// Operation names: the rows of the model. The hot-secret figures read the
// rows named here.
const (
	opResolveWarm      = "resolve 1 reference, warm"
	opResolveWarmBig   = "resolve 1 reference to 64 KiB values, warm"
	opResolveWarmLimit = "resolve 1 reference, warm, run and step at their 4 KiB limits"
	opResolveOff       = "resolve 1 reference, ciphertext cache off"
	opResolveOffBig    = "resolve 1 reference to 64 KiB values, ciphertext cache off"
	opResolveOffLimit  = "resolve 1 reference, ciphertext cache off, run and step at their 4 KiB limits"
)

// canary is in every small value: no figure may show it.
const canary = "CANARY-0123456789abcdefghij"

// small are the values of a typical secret.
func small(i int) map[string]string {
	return map[string]string{"user": "app", "password": fmt.Sprintf("%s-%d", canary, i)}
}

// largest are values whose canonical form is exactly the 64 KiB limit.
func largest(c byte) map[string]string {
	return map[string]string{"v": strings.Repeat(string(c), secrets.MaxPlaintext-len(`{"v":""}`))}
}

// objectOf is a JSON object of exactly n bytes.
func objectOf(n int) json.RawMessage {
	return json.RawMessage(`{"x":"` + strings.Repeat("r", n-len(`{"x":""}`)) + `"}`)
}

// A run and a step as a scheduler and a runner give them.
var (
	typicalRun  = json.RawMessage(`{"loop":"deploy-web","run":"run_01JBZ3Q4T5V6W7X8Y9Z0A1B2C3"}`)
	typicalStep = json.RawMessage(`{"step":"migrate","attempt":1}`)
)

// scenario runs every measured operation on a fresh table of b, in an order
// where each finds the caches it is named for, and returns the rows and
// how the audit records of one secret spread: the number of records that
// landed in each of its audit partitions, for records whose IDs end in
// each of the 32 equally likely characters once.
func scenario(w *world) ([]row, map[string]int) {
	ctx := w.ctx
	var rows []row
	add := func(r row) { rows = append(rows, r) }

	// The API function's process. Its first write makes the key check.
	api := w.service(secrets.KeyCheckInit, nil)
	key, keyString, err := api.CreateAPIKey(ctx, project, "ci", secrets.AllScopes)
	w.must("creating the API key", err)
	for i := range 50 {
		_, err := api.CreateSecret(ctx, project, secrets.CreateSecretInput{Name: fmt.Sprintf("app-%02d", i), Values: small(i)})
		w.must("creating a secret", err)
	}
	for _, name := range []string{"api", "cache"} {
		_, err := api.CreateSecret(ctx, project, secrets.CreateSecretInput{Name: name, Values: small(1)})
		w.must("creating a secret", err)
	}
	_, err = api.CreateSecret(ctx, project, secrets.CreateSecretInput{Name: "described", Description: strings.Repeat("d", 1024), Values: small(2)})
	w.must("creating a secret", err)

	add(w.measure("create, small values", budget{1, 0, 10}, func() error {
		_, err := api.CreateSecret(ctx, project, secrets.CreateSecretInput{Name: "db", Values: small(3)})
		return err
	}))
	add(w.measure("create, 64 KiB values", budget{1, 0, 138}, func() error {
		_, err := api.CreateSecret(ctx, project, secrets.CreateSecretInput{Name: "big", Values: largest('a')})
		return err
	}))
	add(w.measure("rotate, small values", budget{3, 2, 12}, func() error {
		_, err := api.UpdateSecret(ctx, project, "db", secrets.UpdateSecretInput{Values: small(4)})
		return err
	}))
	add(w.measure("rotate, 64 KiB values", budget{3, 2, 140}, func() error {
		_, err := api.UpdateSecret(ctx, project, "big", secrets.UpdateSecretInput{Values: largest('b')})
		return err
	}))
	add(w.measure("get a secret", budget{1, 1, 0}, func() error {
		_, err := api.GetSecret(ctx, project, "db")
		return err
	}))
	add(w.measure("get a secret whose description is at its 1,024-character limit", budget{1, 1, 0}, func() error {
		_, err := api.GetSecret(ctx, project, "described")
		return err
	}))
	add(w.measure("list a page of secrets (50, the default)", budget{1, 3, 0}, func() error {
		page, _, err := api.ListSecrets(ctx, project, secrets.ListQuery{})
		if err == nil && len(page) != secrets.DefaultPageSize {
			err = fmt.Errorf("a page of %d secrets, want %d", len(page), secrets.DefaultPageSize)
		}
		return err
	}))
	add(w.measure("get a version", budget{3, 3, 0}, func() error {
		_, _, err := api.GetVersion(ctx, project, "db", "current")
		return err
	}))
	add(w.measure("enable an older version (a roll back)", budget{4, 3, 10}, func() error {
		_, _, err := api.ChangeVersionStateWith(ctx, project, "db", "1", secrets.ActionEnable, secrets.ActionOptions{})
		return err
	}))
	add(w.measure("destroy a DISABLED version of 64 KiB values", budget{4, 3, 138}, func() error {
		_, _, err := api.ChangeVersionStateWith(ctx, project, "big", "1", secrets.ActionDestroy, secrets.ActionOptions{})
		return err
	}))

	// Grants. The first grant ever makes the grant key; a later process
	// only reads it.
	_, _, err = api.MintGrant(ctx, project, key, secrets.MintGrantInput{Secrets: []string{"db"}})
	w.must("minting the first grant", err)
	api2 := w.service(secrets.KeyCheckInit, nil)
	add(w.measure("mint a grant for 1 secret, new process", budget{4, 5, 2}, func() error {
		_, _, err := api2.MintGrant(ctx, project, key, secrets.MintGrantInput{Secrets: []string{"db"}, Run: typicalRun})
		return err
	}))
	var grant, grantAtLimit string
	add(w.measure("mint a grant for 4 secrets", budget{5, 6, 2}, func() error {
		var err error
		_, grant, err = api2.MintGrant(ctx, project, key, secrets.MintGrantInput{Secrets: []string{"db", "big", "api", "cache"}, Run: typicalRun})
		return err
	}))
	_, grantAtLimit, err = api2.MintGrant(ctx, project, key, secrets.MintGrantInput{Secrets: []string{"db", "big"}, Run: objectOf(secrets.MaxRunBytes)})
	w.must("minting a grant", err)

	verifier := w.service(secrets.KeyCheckVerify, nil)
	add(w.measure("verify a grant, cold container", budget{3, 4, 0}, func() error {
		_, err := verifier.VerifyGrant(ctx, grant)
		return err
	}))
	add(w.measure("verify a grant, warm", budget{0, 0, 0}, func() error {
		_, err := verifier.VerifyGrant(ctx, grant)
		return err
	}))
	w.clock.Advance(30 * time.Second)
	add(w.measure("verify a grant, warm, its 30 s liveness cache expired", budget{1, 2, 0}, func() error {
		_, err := verifier.VerifyGrant(ctx, grant)
		return err
	}))

	// The resolve function: each container is a fresh process.
	event := func(g, input string, step json.RawMessage) resolve.Event {
		return resolve.Event{Grant: g, Input: json.RawMessage(input), Step: step}
	}
	one := `{"dsn":"postgres://app:${secret:db.password}@db/app"}`
	oneBig := `{"blob":"${secret:big.v}"}`
	three := `{"db":"${secret:db.password}","api":"${secret:api.password}","cache":"${secret:cache.password}"}`
	resolver := func(tune func(*secrets.Options)) (*resolve.Resolver, *secrets.Service) {
		svc := w.service(secrets.KeyCheckVerify, tune)
		return resolve.New(svc, quiet), svc
	}
	run := func(r *resolve.Resolver, ev resolve.Event) func() error {
		return func() error {
			res, err := r.Resolve(ctx, ev)
			if err == nil && len(res.Resolved) == 0 {
				err = fmt.Errorf("nothing resolved")
			}
			return err
		}
	}

	r1, r1svc := resolver(nil)
	add(w.measure("resolve 1 reference, cold container", budget{7, 6, 2}, run(r1, event(grant, one, typicalStep))))
	add(w.measure(opResolveWarm, budget{2, 1, 1}, run(r1, event(grant, one, typicalStep))))
	_, err = api.UpdateSecret(ctx, project, "db", secrets.UpdateSecretInput{Values: small(5)})
	w.must("rotating", err)
	add(w.measure("resolve 1 reference, warm, first after a rotation", budget{4, 2, 2}, run(r1, event(grant, one, typicalStep))))
	add(w.measure("resolve 1 reference to 64 KiB values, warm, first of that version", budget{4, 18, 2}, run(r1, event(grant, oneBig, typicalStep))))
	add(w.measure(opResolveWarmBig, budget{2, 1, 1}, run(r1, event(grant, oneBig, typicalStep))))
	w.must("warming", run(r1, event(grantAtLimit, one, objectOf(secrets.MaxRunBytes)))())
	add(w.measure(opResolveWarmLimit, budget{2, 1, 9}, run(r1, event(grantAtLimit, one, objectOf(secrets.MaxRunBytes)))))

	r3, _ := resolver(nil)
	add(w.measure("resolve 3 references to 3 secrets, cold container", budget{7, 10, 12}, run(r3, event(grant, three, typicalStep))))
	add(w.measure("resolve 3 references to 3 secrets, warm", budget{2, 3, 6}, run(r3, event(grant, three, typicalStep))))

	// The previous design's reads: the current version's ciphertext read
	// on every call.
	off, _ := resolver(func(o *secrets.Options) { o.CiphertextCacheSize = -1 })
	w.must("warming", run(off, event(grant, one, typicalStep))())
	add(w.measure(opResolveOff, budget{3, 2, 1}, run(off, event(grant, one, typicalStep))))
	w.must("warming", run(off, event(grant, oneBig, typicalStep))())
	add(w.measure(opResolveOffBig, budget{3, 18, 1}, run(off, event(grant, oneBig, typicalStep))))
	w.must("warming", run(off, event(grantAtLimit, one, objectOf(secrets.MaxRunBytes)))())
	add(w.measure(opResolveOffLimit, budget{3, 2, 9}, run(off, event(grantAtLimit, one, objectOf(secrets.MaxRunBytes)))))

	// The audit, as resolve appends it (last use already recorded by the
	// resolves above).
	db, err := api.GetSecret(ctx, project, "db")
	w.must("reading db", err)
	record := func(id string, run, step json.RawMessage) *secrets.Resolution {
		return &secrets.Resolution{
			ID: id, Project: project, SecretID: db.ID, SecretName: db.Name, Version: db.CurrentVersion,
			Keys: []string{"password"}, GrantID: "grt_01JBZ3Q4T5V6W7X8Y9Z0A1B2C3", KeyID: key.ID, Run: run, Step: step,
		}
	}
	add(w.measure("append 1 audit record", budget{1, 0, 1}, func() error {
		return r1svc.RecordResolutions(ctx, []*secrets.Resolution{record("", typicalRun, typicalStep)})
	}))
	add(w.measure("append 1 audit record, run and step at their 4 KiB limits", budget{1, 0, 9}, func() error {
		return r1svc.RecordResolutions(ctx, []*secrets.Resolution{record("", objectOf(secrets.MaxRunBytes), objectOf(secrets.MaxRunBytes))})
	}))

	// How one secret's audit spreads: a record's partition follows the
	// last character of its ID, which is random.
	base := secrets.NewULID(w.clock.Now(), nil)
	w.rec.Reset()
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	for _, c := range crockford {
		w.must("appending audit", r1svc.RecordResolutions(ctx, []*secrets.Resolution{record(base[:25]+string(c), nil, nil)}))
	}
	spread := map[string]int{}
	for _, c := range w.rec.Calls() {
		for _, it := range c.Items {
			if strings.HasPrefix(it.Key.Sort, "R#") {
				spread[it.Key.Partition]++
			}
		}
	}

	// API keys. The first authentication records the key's first use; a
	// process reads the key again once per cache period (30 s), and
	// records its use again when the recorded one is 5 minutes old.
	authn := w.service(secrets.KeyCheckInit, nil)
	w.must("authenticating", func() error { _, err := authn.Authenticate(ctx, keyString); return err }())
	add(w.measure("authenticate an API key, warm (cached)", budget{0, 0, 0}, func() error {
		_, err := authn.Authenticate(ctx, keyString)
		return err
	}))
	w.clock.Advance(secrets.LastUsedInterval)
	add(w.measure("authenticate an API key, cold process, last use over 5 minutes ago", budget{3, 2, 4}, func() error {
		_, err := w.service(secrets.KeyCheckInit, nil).Authenticate(ctx, keyString)
		return err
	}))
	add(w.measure("authenticate an API key, cold process, last use within 5 minutes", budget{1, 1, 0}, func() error {
		_, err := w.service(secrets.KeyCheckInit, nil).Authenticate(ctx, keyString)
		return err
	}))
	return rows, spread
}
