package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/resolve"
)

// Every body is read strictly: a member named twice at any depth, a string
// that is not valid Unicode (a lone surrogate escape, raw invalid UTF-8),
// or a field named in another case is a 400 naming the field, with no
// value in it, and nothing is written.
func TestStrictBodies(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"k": "v"})
	const canary = "CANARY-strict-4b1e"
	var keysBefore api.APIKeyList
	ts.do("GET", "/v1/projects/acme/api-keys", nil).want(t, 200).decode(t, &keysBefore)

	const (
		create  = "POST /v1/projects/acme/secrets"
		update  = "PATCH /v1/projects/acme/secrets/db"
		disable = "POST /v1/projects/acme/secrets/db/versions/1/disable"
		apiKey  = "POST /v1/projects/acme/api-keys"
	)
	for _, c := range []struct {
		name, route, body, field, says string
	}{
		{"duplicate name", create, `{"name":"a","name":"b","values":{"k":"` + canary + `"}}`, "name", `field "name" appears more than once`},
		{"duplicate values", create, `{"name":"a","values":{"k":"x"},"values":{"k":"` + canary + `"}}`, "values", `field "values" appears more than once`},
		{"duplicate value key", create, `{"name":"a","values":{"k":"` + canary + `","k":"x"}}`, "values", `key "k" appears more than once in values`},
		{"duplicate key written with an escape", create, `{"name":"a","values":{"k":"` + canary + `","\u006b":"x"}}`, "values", `key "k" appears more than once in values`},
		{"lone high surrogate in a value", create, `{"name":"a","values":{"k":"` + canary + `\ud800"}}`, "values", `the value of key "k" holds a lone UTF-16 surrogate escape`},
		{"lone low surrogate in a value", create, `{"name":"a","values":{"k":"\udc00` + canary + `"}}`, "values", `the value of key "k" holds a lone UTF-16 surrogate escape`},
		{"high surrogate then not a low one", create, `{"name":"a","values":{"k":"\ud800\u0041` + canary + `"}}`, "values", `lone UTF-16 surrogate`},
		{"raw invalid UTF-8 in a value", create, "{\"name\":\"a\",\"values\":{\"k\":\"" + canary + "\xff\"}}", "values", `the value of key "k" holds bytes that are not UTF-8`},
		{"raw encoded surrogate in a value", create, "{\"name\":\"a\",\"values\":{\"k\":\"\xed\xa0\x80" + canary + "\"}}", "values", `bytes that are not UTF-8`},
		{"lone surrogate in a value key", create, `{"name":"a","values":{"\ud800":"` + canary + `"}}`, "values", `values is not valid Unicode: a key holds a lone UTF-16 surrogate escape`},
		{"lone surrogate in the name", create, `{"name":"a\udfff","values":{"k":"` + canary + `"}}`, "name", `name is not valid Unicode`},
		{"lone surrogate in a field name", create, `{"\ud800":"a","values":{"k":"` + canary + `"}}`, "", `a field name holds a lone UTF-16 surrogate escape`},
		{"NAME", create, `{"NAME":"a","values":{"k":"` + canary + `"}}`, "NAME", `unknown field "NAME": field names match exactly, case included (did you mean "name"?)`},
		{"Values", create, `{"name":"a","Values":{"k":"` + canary + `"}}`, "Values", `unknown field "Values"`},

		{"duplicate description on update", update, `{"description":"a","description":"` + canary + `"}`, "description", `field "description" appears more than once`},
		{"duplicate value key on update", update, `{"values":{"k":"1","j":"` + canary + `","k":"2"}}`, "values", `key "k" appears more than once in values`},
		{"lone surrogate in a value on update", update, `{"values":{"k":"` + canary + `\uDBFF"}}`, "values", `lone UTF-16 surrogate`},
		{"raw invalid UTF-8 on update", update, "{\"values\":{\"k\":\"\xc3" + canary + "\"}}", "values", `bytes that are not UTF-8`},
		{"lone surrogate in the description", update, `{"description":"\udc00"}`, "description", `description is not valid Unicode`},
		{"Description on update", update, `{"Description":"x","values":{"k":"` + canary + `"}}`, "Description", `did you mean "description"?`},
		{"VALUES on update", update, `{"VALUES":{"k":"` + canary + `"}}`, "VALUES", `unknown field "VALUES"`},

		{"lone surrogate in a field name of a version action", disable, `{"\ud800":1}`, "", `a field name holds a lone UTF-16 surrogate escape`},
		{"raw invalid UTF-8 in a version action", disable, "{\"\xff\":1}", "", `bytes that are not UTF-8`},
		{"null body of a version action", disable, `null`, "", `must be a JSON object`},
		{"field of a version action", disable, `{"Force":true}`, "Force", `unknown field "Force"`},

		{"duplicate scopes", apiKey, `{"name":"ci","scopes":["secrets:read"],"scopes":["keys:admin"]}`, "scopes", `field "scopes" appears more than once`},
		{"duplicate key name", apiKey, `{"name":"ci","name":"cd"}`, "name", `field "name" appears more than once`},
		{"lone surrogate in a scope", apiKey, `{"name":"ci","scopes":["secrets:read\ud800"]}`, "scopes", `scopes/0 is not valid Unicode`},
		{"raw invalid UTF-8 in a key name", apiKey, "{\"name\":\"ci\xe2\x82\"}", "name", `bytes that are not UTF-8`},
		{"Scopes", apiKey, `{"name":"ci","Scopes":["secrets:read"]}`, "Scopes", `did you mean "scopes"?`},
		{"NAME of a key", apiKey, `{"NAME":"ci"}`, "NAME", `unknown field "NAME"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			method, path, _ := strings.Cut(c.route, " ")
			r := ts.serve(req{method: method, path: path, key: ts.key, body: c.body})
			e := wantError(t, r, 400, c.field)
			if !strings.Contains(e.Message, c.says) {
				t.Errorf("message %q does not say %q", e.Message, c.says)
			}
			if strings.Contains(string(r.Body), canary) {
				t.Errorf("a value reached the answer: %s", r.Body)
			}
		})
	}

	// Nothing was written.
	var list api.SecretList
	ts.do("GET", "/v1/projects/acme/secrets", nil).want(t, 200).decode(t, &list)
	if len(list.Secrets) != 1 || list.Secrets[0].Name != "db" || list.Secrets[0].LatestVersion != 1 || list.Secrets[0].Description != "" {
		t.Errorf("secrets after refused writes: %+v", list.Secrets)
	}
	var versions api.VersionList
	ts.do("GET", "/v1/projects/acme/secrets/db/versions", nil).want(t, 200).decode(t, &versions)
	if len(versions.Versions) != 1 || versions.Versions[0].State != "ENABLED" {
		t.Errorf("versions after refused writes: %+v", versions.Versions)
	}
	var keysAfter api.APIKeyList
	ts.do("GET", "/v1/projects/acme/api-keys", nil).want(t, 200).decode(t, &keysAfter)
	if len(keysAfter.APIKeys) != len(keysBefore.APIKeys) {
		t.Errorf("%d API keys after refused creations, %d before", len(keysAfter.APIKeys), len(keysBefore.APIKeys))
	}
	if strings.Contains(ts.logs.String(), canary) {
		t.Errorf("a value reached the log")
	}
}

// A value with every character that is tricky but valid is stored as
// sent: its sha256 through the API is an independent RFC 8785 computation
// of the JSON sent (jsontext's canonicalizer, not pkg/secrets'), and
// resolving it gives back exactly the string that was sent.
func TestDigestOfTrickyValues(t *testing.T) {
	ts := newTestServer(t)
	values := `{"tricky":"ls\u2028ps\u2029 ` + "raw\u2028\u2029" + ` nc\uffff` + "\uffff" + ` astral\ud83d\ude00` + "\U0001F600" +
		` nul\u0000 ctl\u001f\b\f\n\r\t q\" bs\\ sl\/ html<>&\u003c bom\ufeff","Z":"last by name, first by UTF-16","a":"é"}`
	body := `{"name":"tricky","values":` + values + `}`
	ts.do("POST", "/v1/projects/acme/secrets", body).want(t, 201)

	canonical := jsontext.Value(values)
	if err := canonical.Canonicalize(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canonical)
	var v api.Version
	ts.do("GET", "/v1/projects/acme/secrets/tricky/versions/1", nil).want(t, 200).decode(t, &v)
	if v.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s through the API, %x by RFC 8785 of what was sent (%s)", v.SHA256, sum, canonical)
	}

	var sent map[string]string
	if err := json.Unmarshal([]byte(values), &sent); err != nil {
		t.Fatal(err)
	}
	var g api.ResolveGrantCreated
	ts.do("POST", "/v1/projects/acme/resolve-grants", `{"secrets":["tricky"]}`).want(t, 201).decode(t, &g)
	rv := resolve.New(ts.svc, newJSONLogger(ts.logs))
	for key, want := range sent {
		res, err := rv.Resolve(context.Background(), resolve.Event{Grant: g.Grant, Input: json.RawMessage(`["${secret:tricky.` + key + `}"]`)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := json.Unmarshal(res.Output, &got); err != nil || len(got) != 1 {
			t.Fatalf("output %q: %v", res.Output, err)
		}
		if got[0] != want {
			t.Errorf("%s resolved to %q, sent %q", key, got[0], want)
		}
		quoted, err := jsontext.AppendQuote(nil, want)
		if err != nil || string(res.Output) != "["+string(quoted)+"]" {
			t.Errorf("%s: output %s, want [%s]", key, res.Output, quoted)
		}
	}
	if strings.Contains(ts.logs.String(), "astral") {
		t.Errorf("a value reached the log")
	}
}
