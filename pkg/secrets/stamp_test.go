package secrets

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Records as this version writes them, and as earlier ones did (instants
// as RFC 3339 strings, digests in hex): both decode to the same values,
// and the old form is written again in the new one. The literals are the
// storage format: a change to either side is a change of format.
func TestRecordFormats(t *testing.T) {
	const (
		old1 = `"2026-12-02T04:11:33.036Z"`
		new1 = `1796184693036`
		old2 = `"2026-12-09T04:11:33.036Z"`
		new2 = `1796789493036`
		hexH = `"172ec1cfa04db7c5a440541ac68ce8ad168536e83006654940686549b868a917"`
		b64H = `"Fy7Bz6BNt8WkQFQaxozorRaFNugwBmVJQGhlSbhoqRc"`
		sec  = `sec_01M8TF8VKHTT2JDJR2V7F3K4J5`
	)
	t1 := time.Date(2026, 12, 2, 4, 11, 33, 36e6, time.UTC)
	t2 := t1.Add(7 * 24 * time.Hour)
	sum := "172ec1cfa04db7c5a440541ac68ce8ad168536e83006654940686549b868a917"
	// old turns a record in the new form into the form of earlier versions.
	old := strings.NewReplacer(new1, old1, new2, old2, b64H, hexH).Replace

	cases := []struct {
		name string
		rec  func() any // a fresh record to decode into
		json string     // as this version writes it
		want any        // the domain value it stands for
		of   func(any) any
	}{
		{
			name: "secret",
			rec:  func() any { return &secretRec{} },
			json: `{"id":"` + sec + `","p":"acme","n":"db","c":2,"l":2,"pv":1,"pu":` + new2 + `,"gr":3600,"at":604800,` +
				`"al":[{"n":"old-db","u":` + new2 + `,"r":3}],"lb":{"team":"a"},"ex":` + new2 + `,"rb":` + new2 + `,"ca":` + new1 + `,"ua":` + new2 + `,"r":4}`,
			want: &Secret{ID: sec, Project: "acme", Name: "db", CurrentVersion: 2, LatestVersion: 2, PreviousVersion: 1, PreviousUntil: t2,
				PreviousGrace: time.Hour, AliasTTL: 7 * 24 * time.Hour, Aliases: []Alias{{Name: "old-db", Until: t2, rev: 3}},
				Labels: map[string]string{"team": "a"}, ExpiresAt: t2, RotateBy: t2, CreatedAt: t1, UpdatedAt: t2, Revision: 4},
			of: func(r any) any { return r.(*secretRec).secret() },
		},
		{
			name: "secret without dates",
			rec:  func() any { return &secretRec{} },
			json: `{"id":"` + sec + `","p":"acme","n":"db","c":1,"l":1,"ca":` + new1 + `,"ua":` + new1 + `,"r":1}`,
			want: &Secret{ID: sec, Project: "acme", Name: "db", CurrentVersion: 1, LatestVersion: 1, CreatedAt: t1, UpdatedAt: t1, Revision: 1},
			of:   func(r any) any { return r.(*secretRec).secret() },
		},
		{
			name: "version",
			rec:  func() any { return &versionRec{} },
			json: `{"p":"acme","s":"` + sec + `","v":1,"st":"ENABLED","h":` + b64H + `,"k":["value"],"ca":` + new1 + `,"sa":` + new2 + `}`,
			want: &Version{Project: "acme", SecretID: sec, Number: 1, State: Enabled, SHA256: sum, Keys: []string{"value"}, CreatedAt: t1, StateChangedAt: t2},
			of:   func(r any) any { return r.(*versionRec).version() },
		},
		{
			name: "event",
			rec:  func() any { return &eventRec{} },
			json: `{"id":"evt_01M8TF8VKJZNT62ZJVX7KNN44G","t":"secret.created","p":"acme","s":"` + sec + `","n":"db","v":1,"h":` + b64H + `,"st":"ENABLED","at":` + new1 + `}`,
			want: &eventRec{ID: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", Type: EventSecretCreated, Project: "acme", SecretID: sec, Name: "db", Version: 1,
				SHA256: digest(sum), State: Enabled, At: at(t1)},
			of: func(r any) any { return r },
		},
		{
			name: "event without a version",
			rec:  func() any { return &eventRec{} },
			json: `{"id":"evt_01M8TF8VKJZNT62ZJVX7KNN44G","t":"api_key.created","p":"acme","k":"key_1","at":` + new1 + `}`,
			want: &eventRec{ID: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", Type: EventAPIKeyCreated, Project: "acme", KeyID: "key_1", At: at(t1)},
			of:   func(r any) any { return r },
		},
		{
			name: "alias",
			rec:  func() any { return &aliasRec{} },
			json: `{"alias_of":"` + sec + `","p":"acme","n":"old-db","until":` + new1 + `,"trashed":` + new1 + `}`,
			want: &aliasRec{AliasOf: sec, Project: "acme", Name: "old-db", Until: at(t1), Trashed: at(t1)},
			of:   func(r any) any { return r },
		},
		{
			name: "API key",
			rec:  func() any { return &apiKeyRec{} },
			json: `{"id":"key_1","p":"acme","sc":["read"],"h":"ab","ca":` + new1 + `,"lu":` + new2 + `}`,
			want: &APIKey{ID: "key_1", Project: "acme", Scopes: []string{"read"}, Hash: "ab", CreatedAt: t1, LastUsedAt: t2},
			of:   func(r any) any { return r.(*apiKeyRec).apiKey() },
		},
		{
			name: "trash",
			rec:  func() any { return &trashRec{} },
			json: `{"s":{"id":"` + sec + `","p":"acme","n":"db","l":1,"ca":` + new1 + `,"ua":` + new1 + `,"r":2},"ta":` + new1 + `,"pa":` + new2 + `}`,
			want: &trashRec{Secret: secretRec{ID: sec, Project: "acme", Name: "db", Latest: 1, Created: at(t1), Updated: at(t1), Revision: 2}, Trashed: at(t1), PurgeAt: at(t2)},
			of:   func(r any) any { return r },
		},
		{
			name: "reminder",
			rec:  func() any { return &reminderRec{} },
			json: `{"p":"acme","s":"` + sec + `","k":"expires","l":86400,"d":` + new2 + `}`,
			want: &reminderRec{Project: "acme", SecretID: sec, Kind: "expires", Lead: 86400, Date: at(t2)},
			of:   func(r any) any { return r },
		},
		{
			name: "resolution",
			rec:  func() any { return &resolutionRec{} },
			json: `{"id":"01M8TF8VKJZNT62ZJVX7KNN44G","p":"acme","s":"` + sec + `","n":"db","v":1,"k":["value"],"at":` + new1 + `}`,
			want: &Resolution{ID: "01M8TF8VKJZNT62ZJVX7KNN44G", Project: "acme", SecretID: sec, SecretName: "db", Version: 1, Keys: []string{"value"}, ResolvedAt: t1},
			of:   func(r any) any { return r.(*resolutionRec).resolution() },
		},
		{
			name: "last use",
			rec:  func() any { return &lastUseRec{} },
			json: `{"v":1,"at":` + new1 + `}`,
			want: &lastUseRec{Version: 1, At: at(t1)},
			of:   func(r any) any { return r },
		},
		{
			name: "grant",
			rec:  func() any { return &grantRec{} },
			json: `{"id":"grt_1","p":"acme","s":[{"ID":"` + sec + `","Name":"db"}],"k":"key_1","ca":` + new1 + `,"exp":` + new2 + `}`,
			want: &grantRec{ID: "grt_1", Project: "acme", Secrets: []GrantSecret{{ID: sec, Name: "db"}}, KeyID: "key_1", Created: at(t1), Expires: at(t2)},
			of:   func(r any) any { return r },
		},
		{
			name: "key check",
			rec:  func() any { return &keyCheckRec{} },
			json: `{"wrapped":"AQI=","sum":"AwQ=","ca":` + new1 + `}`,
			want: &keyCheckRec{Wrapped: []byte{1, 2}, Sum: []byte{3, 4}, Created: at(t1)},
			of:   func(r any) any { return r },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			oldJSON := old(tc.json)
			if oldJSON == tc.json {
				t.Fatalf("the old form is the new one: %s", tc.json)
			}
			for _, form := range []struct{ name, json string }{{"new", tc.json}, {"old", oldJSON}} {
				rec := tc.rec()
				if err := json.Unmarshal([]byte(form.json), rec); err != nil {
					t.Fatalf("%s form %s: %v", form.name, form.json, err)
				}
				got := tc.of(rec)
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s form %s\ndecodes to %+v\nwant       %+v", form.name, form.json, got, tc.want)
				}
				if b := encode(rec); string(b) != tc.json {
					t.Errorf("%s form encodes again as\n%s\nwant\n%s", form.name, b, tc.json)
				}
			}
		})
	}
}

// An instant that is whole milliseconds is stored as its Unix
// milliseconds; the zero instant stays omitted where omitzero, and
// round-trips where it is not; an instant that is not whole milliseconds
// is stored as before, exactly.
func TestStamp(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		json string
	}{
		{time.Date(2026, 12, 2, 4, 11, 33, 36e6, time.UTC), `1796184693036`},
		{time.Date(2026, 12, 2, 4, 11, 33, 36e6, time.UTC).In(time.FixedZone("x", 3600)), `1796184693036`},
		{time.UnixMilli(0).UTC(), `0`},
		{time.UnixMilli(-1).UTC(), `-1`},
		{time.Time{}, `-62135596800000`},
		{time.Date(2026, 12, 2, 4, 11, 33, 36_000_001, time.UTC), `"2026-12-02T04:11:33.036000001Z"`},
	} {
		b, err := json.Marshal(at(tc.in))
		if err != nil || string(b) != tc.json {
			t.Errorf("%v encodes as %s, %v; want %s", tc.in, b, err, tc.json)
			continue
		}
		var got stamp
		if err := json.Unmarshal(b, &got); err != nil || !got.Equal(tc.in) || got.IsZero() != tc.in.IsZero() {
			t.Errorf("%s decodes to %v, %v; want %v", b, got.Time, err, tc.in)
		}
		if tc.in.IsZero() && got.Time != (time.Time{}) {
			t.Errorf("the zero instant decodes to %#v", got.Time)
		}
	}
	if b := encode(&apiKeyRec{ID: "k", Created: at(time.UnixMilli(5))}); strings.Contains(string(b), `"lu"`) {
		t.Errorf("a zero instant is not omitted: %s", b)
	}
	for _, bad := range []string{`1.5`, `"yesterday"`, `true`, `{}`, `1e3`} {
		var s stamp
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s decodes as an instant: %v", bad, s.Time)
		}
	}
	var s stamp
	if err := json.Unmarshal([]byte(`null`), &s); err != nil || !s.IsZero() {
		t.Errorf("null decodes to %v, %v", s.Time, err)
	}
}

// A digest in hex is stored in 43 characters of base64; anything else is
// stored as it is; both forms decode to what was stored.
func TestDigest(t *testing.T) {
	sum := "172ec1cfa04db7c5a440541ac68ce8ad168536e83006654940686549b868a917"
	for _, tc := range []struct{ in, json string }{
		{sum, `"Fy7Bz6BNt8WkQFQaxozorRaFNugwBmVJQGhlSbhoqRc"`},
		{strings.Repeat("0", 64), `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`},
		{strings.Repeat("f", 64), `"__________________________________________8"`},
		{"", `""`},
		{strings.ToUpper(sum), `"` + strings.ToUpper(sum) + `"`},
		{sum[:62], `"` + sum[:62] + `"`},
		{"not a digest", `"not a digest"`},
	} {
		b, err := json.Marshal(digest(tc.in))
		if err != nil || string(b) != tc.json {
			t.Errorf("%q encodes as %s, %v; want %s", tc.in, b, err, tc.json)
			continue
		}
		var got digest
		if err := json.Unmarshal(b, &got); err != nil || string(got) != tc.in {
			t.Errorf("%s decodes to %q, %v; want %q", b, got, err, tc.in)
		}
		// The form of earlier versions: the string as it is.
		if err := json.Unmarshal([]byte(`"`+tc.in+`"`), &got); err != nil || string(got) != tc.in {
			t.Errorf("the old form of %q decodes to %q, %v", tc.in, got, err)
		}
	}
}
