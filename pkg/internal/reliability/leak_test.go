package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// canaries hands out unique plaintexts and remembers them.
type canaries struct{ all []string }

func (c *canaries) next() string {
	b := make([]byte, 8)
	rand.Read(b)
	s := fmt.Sprintf("CANARY%02d%s", len(c.all), hex.EncodeToString(b))
	c.all = append(c.all, s)
	return s
}

// find returns the canaries that occur in b, raw or base64-encoded.
func (c *canaries) find(b []byte) []string {
	var out []string
	for _, s := range c.all {
		if bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(s)))) {
			out = append(out, s)
		}
	}
	return out
}

// leakSweep runs every operation with canary values through the handler
// and the resolver, and returns everything the outside world saw (responses,
// server and resolver logs) and the resolver's outputs.
func leakSweep(t *testing.T, e *env, c *canaries) (seen, outputs *bytes.Buffer) {
	seen, outputs = &bytes.Buffer{}, &bytes.Buffer{}
	record := func(r *response) *response {
		fmt.Fprintf(seen, "%d %v %s\n", r.Status, r.Header, r.Body)
		return r
	}
	do := func(method, path string, body any, hdr ...string) *response {
		return record(e.do(method, path, body, hdr...))
	}
	vals := func(keys ...string) map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			m[k] = c.next()
		}
		return m
	}
	const base = "/v1/projects/acme/secrets"
	do("POST", base, map[string]any{"name": "db", "values": vals("user", "password")}).want(t, 201)
	body := map[string]any{"name": "api", "values": vals("token")}
	do("POST", base, body, "Idempotency-Key", "idem-1").want(t, 201)
	do("POST", base, body, "Idempotency-Key", "idem-1").want(t, 201)                                                     // replay
	do("POST", base, map[string]any{"name": "other", "values": vals("token")}, "Idempotency-Key", "idem-1").want(t, 409) // reused key
	do("POST", base, map[string]any{"name": "db", "values": vals("password")}).want(t, 409)                              // name taken
	do("POST", base, map[string]any{"name": "bad name", "values": vals("k")}).want(t, 400)
	do("POST", base, map[string]any{"name": "bad-key", "values": map[string]string{"bad key": c.next()}})
	do("POST", base, map[string]any{"name": "huge", "values": map[string]string{"k": c.next() + strings.Repeat("x", 70<<10)}})
	do("POST", base, `{"name":"broken","values":{"k":"`+c.next()+`"`).want(t, 400)
	do("POST", base, `{"name":"typed","values":{"k":"`+c.next()+`","n":1}}`).want(t, 400)
	rot := map[string]any{"values": vals("user", "password")}
	do("PATCH", base+"/db", rot, "Idempotency-Key", "idem-2").want(t, 200)
	do("PATCH", base+"/db", rot, "Idempotency-Key", "idem-2").want(t, 200)
	do("PATCH", base+"/db", map[string]any{"values": vals("password")}, "If-Match", `"999"`).want(t, 412)
	do("PATCH", base+"/api", map[string]any{"name": "api2", "values": vals("token")}).want(t, 200)
	do("PATCH", base+"/missing", map[string]any{"values": vals("k")}).want(t, 404)
	do("GET", base, nil).want(t, 200)
	do("GET", base+"/db", nil).want(t, 200)
	do("GET", base+"/db/versions", nil).want(t, 200)
	do("GET", base+"/db/versions/current", nil).want(t, 200)
	do("POST", base+"/db/versions/1/enable", map[string]any{}).want(t, 200)
	do("POST", base+"/db/versions/2/disable", map[string]any{}).want(t, 200)
	do("POST", base+"/db/versions/2/enable", map[string]any{}).want(t, 200)
	do("POST", base+"/db/versions/1/destroy", map[string]any{}).want(t, 200)
	do("POST", base+"/db/versions/1/enable", map[string]any{}).want(t, 409)

	rlogs := &testsupport.SyncBuffer{}
	rv := resolve.New(e.svc, slog.New(slog.NewJSONHandler(rlogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	g := e.grant(`{"run_id":"r1"}`, "db", "api2")
	do("GET", "/v1/projects/acme/resolve-grants", nil).want(t, 200)
	for _, in := range []string{
		`{"grant":"` + g + `","input":{"a":"${secret:db.user}:${secret:db.password}","b":["${secret:api2.token}"]},"step":{"step":"s1"}}`,
		`{"grant":"` + g + `","input":{"a":"${secret:db.user}@1","b":"${secret:api2.token@previous}","c":"${secret:api.token}"}}`,
		`{"grant":"` + g + `","input":{"a":"${secret:db.user}","b":"${secret:db.nokey}","c":"${secret:gone.k}"}}`,
		`{"grant":"` + g + `","input":{"a":"${secret:db.user}","b":"${secret:bad name.k}"}}`,
		`{"grant":"mbg_forged.x","input":{"a":"${secret:db.user}"}}`,
	} {
		res, err := rv.Invoke(ctx, []byte(in))
		if err != nil {
			fmt.Fprintf(seen, "resolve error: %v\n", err)
			continue
		}
		fmt.Fprintf(outputs, "%s\n", res.Output)
		fmt.Fprintf(seen, "resolved: %+v\n", res.Resolved)
	}
	do("GET", base+"/db/resolutions", nil).want(t, 200)
	do("GET", base+"/db/consumers", nil).want(t, 200)
	do("DELETE", base+"/api2", nil).want(t, 204)
	seen.WriteString(e.logs.String())
	seen.WriteString(rlogs.String())
	audit, _, err := e.svc.ListResolutionsOf(ctx, "acme", mustID(t, e, "db"), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range audit {
		fmt.Fprintf(seen, "audit %+v %s\n", *r, r.Run)
	}
	if len(audit) == 0 {
		t.Fatal("no audit record")
	}
	return seen, outputs
}

func mustID(t *testing.T, e *env, name string) string {
	s, err := e.svc.GetSecret(context.Background(), "acme", name)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func checkNoCanary(t *testing.T, where string, c *canaries, b []byte) {
	t.Helper()
	if found := c.find(b); len(found) > 0 {
		i := bytes.Index(b, []byte(found[0]))
		lo, hi := max(i-200, 0), min(i+100, len(b))
		t.Errorf("%s holds %d canaries, e.g. %q in ...%q...", where, len(found), found[0], b[max(lo, 0):max(hi, 0)])
	}
}

// No plaintext value appears in any response, header, log line, audit
// record or stored byte, whatever the operation or error; only the
// resolver's output holds them.
func TestNoPlaintextLeaks(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		e := newBoltEnv(t)
		c := &canaries{}
		seen, outputs := leakSweep(t, e, c)
		checkNoCanary(t, "responses, logs and audit", c, seen.Bytes())
		file, err := os.ReadFile(e.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		checkNoCanary(t, "the bolt file", c, file)
		if n := len(c.find(outputs.Bytes())); n < 3 {
			t.Errorf("the resolver's output holds %d canaries, want the 3 resolved: %s", n, outputs)
		}
		t.Logf("leak sweep (bolt): %d canaries, %d bytes of responses/logs/audit and %d bytes of data file searched, none found", len(c.all), seen.Len(), len(file))
	})
	t.Run("minidyn", func(t *testing.T) {
		client := awstest.NewDynamoClient(awstest.StartMinidyn(t))
		table := fmt.Sprintf("leak-%d", time.Now().UnixNano())
		if _, err := client.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
			t.Fatal(err)
		}
		w, err := local.New(newKEK())
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, dynamo.New(client, table), w)
		c := &canaries{}
		seen, outputs := leakSweep(t, e, c)
		checkNoCanary(t, "responses, logs and audit", c, seen.Bytes())
		var items bytes.Buffer
		n := 0
		p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range out.Items {
				n++
				for k, v := range it {
					fmt.Fprintf(&items, "%s=%#v\n", k, v)
				}
			}
		}
		checkNoCanary(t, "the DynamoDB items", c, items.Bytes())
		if len(c.find(outputs.Bytes())) < 3 {
			t.Errorf("the resolver's output lacks the resolved canaries: %s", outputs)
		}
		t.Logf("leak sweep (minidyn): %d canaries, %d items scanned, none found", len(c.all), n)
	})
}
