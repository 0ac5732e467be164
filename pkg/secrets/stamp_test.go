package secrets

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
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
		json string     // as the version before this one wrote it
		cbor string     // as this version writes it, in CBOR's diagnostic notation
		want any        // the domain value it stands for
		of   func(any) any
	}{
		{
			name: "secret",
			rec:  func() any { return &secretRec{} },
			json: `{"id":"` + sec + `","p":"acme","n":"db","c":2,"l":2,"pv":1,"pu":` + new2 + `,"gr":3600,"at":604800,` +
				`"al":[{"n":"old-db","u":` + new2 + `,"r":3}],"lb":{"team":"a"},"ex":` + new2 + `,"rb":` + new2 + `,"ca":` + new1 + `,"ua":` + new2 + `,"r":4}`,
			cbor: `{0: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 1: "acme", 2: "db", 4: 2, 5: 2, 7: 1, 8: 1796789493036, 9: 3600, 10: 604800, 11: [{0: "old-db", 1: 1796789493036, 2: 3}], 12: {"team": "a"}, 13: 1796789493036, 14: 1796789493036, 15: 1796184693036, 16: 1796789493036, 17: 4}`,
			want: &Secret{ID: sec, Project: "acme", Name: "db", CurrentVersion: 2, LatestVersion: 2, PreviousVersion: 1, PreviousUntil: t2,
				PreviousGrace: time.Hour, AliasTTL: 7 * 24 * time.Hour, Aliases: []Alias{{Name: "old-db", Until: t2, rev: 3}},
				Labels: map[string]string{"team": "a"}, ExpiresAt: t2, RotateBy: t2, CreatedAt: t1, UpdatedAt: t2, Revision: 4},
			of: func(r any) any { return r.(*secretRec).secret() },
		},
		{
			name: "secret without dates",
			rec:  func() any { return &secretRec{} },
			json: `{"id":"` + sec + `","p":"acme","n":"db","c":1,"l":1,"ca":` + new1 + `,"ua":` + new1 + `,"r":1}`,
			cbor: `{0: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 1: "acme", 2: "db", 4: 1, 5: 1, 15: 1796184693036, 16: 1796184693036, 17: 1}`,
			want: &Secret{ID: sec, Project: "acme", Name: "db", CurrentVersion: 1, LatestVersion: 1, CreatedAt: t1, UpdatedAt: t1, Revision: 1},
			of:   func(r any) any { return r.(*secretRec).secret() },
		},
		{
			name: "version",
			rec:  func() any { return &versionRec{} },
			json: `{"p":"acme","s":"` + sec + `","v":1,"st":"ENABLED","h":` + b64H + `,"k":["value"],"ca":` + new1 + `,"sa":` + new2 + `}`,
			cbor: `{0: "acme", 1: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 2: 1, 3: "ENABLED", 4: h'172ec1cfa04db7c5a440541ac68ce8ad168536e83006654940686549b868a917', 5: ["value"], 6: 1796184693036, 7: 1796789493036}`,
			want: &Version{Project: "acme", SecretID: sec, Number: 1, State: Enabled, SHA256: sum, Keys: []string{"value"}, CreatedAt: t1, StateChangedAt: t2},
			of:   func(r any) any { return r.(*versionRec).version() },
		},
		{
			name: "event",
			rec:  func() any { return &eventRec{} },
			json: `{"id":"evt_01M8TF8VKJZNT62ZJVX7KNN44G","t":"secret.created","p":"acme","s":"` + sec + `","n":"db","v":1,"h":` + b64H + `,"st":"ENABLED","at":` + new1 + `}`,
			cbor: `{0: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", 1: "secret.created", 2: "acme", 3: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 4: "db", 5: 1, 6: h'172ec1cfa04db7c5a440541ac68ce8ad168536e83006654940686549b868a917', 7: "ENABLED", 9: 1796184693036}`,
			want: &eventRec{ID: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", Type: EventSecretCreated, Project: "acme", SecretID: sec, Name: "db", Version: 1,
				SHA256: digest(sum), State: Enabled, At: at(t1)},
			of: func(r any) any { return r },
		},
		{
			name: "event without a version",
			rec:  func() any { return &eventRec{} },
			json: `{"id":"evt_01M8TF8VKJZNT62ZJVX7KNN44G","t":"api_key.created","p":"acme","k":"key_1","at":` + new1 + `}`,
			cbor: `{0: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", 1: "api_key.created", 2: "acme", 8: "key_1", 9: 1796184693036}`,
			want: &eventRec{ID: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", Type: EventAPIKeyCreated, Project: "acme", KeyID: "key_1", At: at(t1)},
			of:   func(r any) any { return r },
		},
		{
			name: "alias",
			rec:  func() any { return &aliasRec{} },
			json: `{"alias_of":"` + sec + `","p":"acme","n":"old-db","until":` + new1 + `,"trashed":` + new1 + `}`,
			cbor: `{1: "acme", 2: "old-db", 20: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 21: 1796184693036, 22: 1796184693036}`,
			want: &aliasRec{AliasOf: sec, Project: "acme", Name: "old-db", Until: at(t1), Trashed: at(t1)},
			of:   func(r any) any { return r },
		},
		{
			name: "API key",
			rec:  func() any { return &apiKeyRec{} },
			json: `{"id":"key_1","p":"acme","sc":["read"],"h":"ab","ca":` + new1 + `,"lu":` + new2 + `}`,
			cbor: `{0: "key_1", 1: "acme", 3: ["read"], 4: "ab", 5: 1796184693036, 6: 1796789493036}`,
			want: &APIKey{ID: "key_1", Project: "acme", Scopes: []string{"read"}, Hash: "ab", CreatedAt: t1, LastUsedAt: t2},
			of:   func(r any) any { return r.(*apiKeyRec).apiKey() },
		},
		{
			name: "trash",
			rec:  func() any { return &trashRec{} },
			json: `{"s":{"id":"` + sec + `","p":"acme","n":"db","l":1,"ca":` + new1 + `,"ua":` + new1 + `,"r":2},"ta":` + new1 + `,"pa":` + new2 + `}`,
			cbor: `{0: {0: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 1: "acme", 2: "db", 5: 1, 15: 1796184693036, 16: 1796184693036, 17: 2}, 1: 1796184693036, 2: 1796789493036}`,
			want: &trashRec{Secret: secretRec{ID: sec, Project: "acme", Name: "db", Latest: 1, Created: at(t1), Updated: at(t1), Revision: 2}, Trashed: at(t1), PurgeAt: at(t2)},
			of:   func(r any) any { return r },
		},
		{
			name: "reminder",
			rec:  func() any { return &reminderRec{} },
			json: `{"p":"acme","s":"` + sec + `","k":"expires","l":86400,"d":` + new2 + `}`,
			cbor: `{0: "acme", 1: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 2: "expires", 3: 86400, 4: 1796789493036}`,
			want: &reminderRec{Project: "acme", SecretID: sec, Kind: "expires", Lead: 86400, Date: at(t2)},
			of:   func(r any) any { return r },
		},
		{
			name: "resolution",
			rec:  func() any { return &resolutionRec{} },
			json: `{"id":"01M8TF8VKJZNT62ZJVX7KNN44G","p":"acme","s":"` + sec + `","n":"db","v":1,"k":["value"],"at":` + new1 + `}`,
			cbor: `{0: "01M8TF8VKJZNT62ZJVX7KNN44G", 1: "acme", 2: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 3: "db", 5: 1, 6: ["value"], 11: 1796184693036}`,
			want: &Resolution{ID: "01M8TF8VKJZNT62ZJVX7KNN44G", Project: "acme", SecretID: sec, SecretName: "db", Version: 1, Keys: []string{"value"}, ResolvedAt: t1},
			of:   func(r any) any { return r.(*resolutionRec).resolution() },
		},
		{
			name: "last use",
			rec:  func() any { return &lastUseRec{} },
			json: `{"v":1,"at":` + new1 + `}`,
			cbor: `{0: 1, 1: 1796184693036}`,
			want: &lastUseRec{Version: 1, At: at(t1)},
			of:   func(r any) any { return r },
		},
		{
			name: "grant",
			rec:  func() any { return &grantRec{} },
			json: `{"id":"grt_1","p":"acme","s":[{"ID":"` + sec + `","Name":"db"}],"k":"key_1","ca":` + new1 + `,"exp":` + new2 + `}`,
			cbor: `{0: "grt_1", 1: "acme", 2: [{0: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", 1: "db"}], 4: "key_1", 5: 1796184693036, 6: 1796789493036}`,
			want: &grantRec{ID: "grt_1", Project: "acme", Secrets: []GrantSecret{{ID: sec, Name: "db"}}, KeyID: "key_1", Created: at(t1), Expires: at(t2)},
			of:   func(r any) any { return r },
		},
		{
			name: "key check",
			rec:  func() any { return &keyCheckRec{} },
			json: `{"wrapped":"AQI=","sum":"AwQ=","ca":` + new1 + `}`,
			cbor: `{1: h'0102', 2: h'0304', 3: 1796184693036}`,
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
			var written []byte
			for _, form := range []struct{ name, json string }{{"JSON", tc.json}, {"oldest JSON", oldJSON}} {
				rec := tc.rec()
				if err := decodeRecord([]byte(form.json), rec); err != nil {
					t.Fatalf("%s form %s: %v", form.name, form.json, err)
				}
				if got := tc.of(rec); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s form %s\ndecodes to %+v\nwant       %+v", form.name, form.json, got, tc.want)
				}
				b := encode(rec)
				if diag, err := cbor.Diagnose(b); err != nil || diag != tc.cbor {
					t.Errorf("%s form encodes again as\n%s\nwant\n%s", form.name, diag, tc.cbor)
				}
				if written != nil && !bytes.Equal(b, written) {
					t.Errorf("%s form encodes to other bytes: %x, not %x", form.name, b, written)
				}
				written = b
			}
			rec := tc.rec()
			if err := decodeRecord(written, rec); err != nil {
				t.Fatalf("the CBOR form %x: %v", written, err)
			}
			if got := tc.of(rec); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("the CBOR form decodes to %+v\nwant %+v", got, tc.want)
			}
			if b := encode(rec); !bytes.Equal(b, written) {
				t.Errorf("the CBOR form encodes again as %x, not %x", b, written)
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
		// CBOR: the same integer, or the same string.
		cb, err := recordEnc.Marshal(at(tc.in))
		wantMajor := byte(cborUint)
		if tc.in.UnixMilli() < 0 {
			wantMajor = cborNegInt
		}
		if tc.json[0] == '"' {
			wantMajor = cborText
		}
		if err != nil || major(cb) != wantMajor {
			t.Errorf("%v encodes in CBOR as %x, %v; want major type %d", tc.in, cb, err, wantMajor)
		}
		got = stamp{}
		if err := recordDec.Unmarshal(cb, &got); err != nil || !got.Equal(tc.in) || got.IsZero() != tc.in.IsZero() {
			t.Errorf("CBOR %x decodes to %v, %v; want %v", cb, got.Time, err, tc.in)
		}
	}
	for _, bad := range []any{1.5, "yesterday", true, map[int]int{}, []byte{1}} {
		b, _ := recordEnc.Marshal(bad)
		var s stamp
		if err := recordDec.Unmarshal(b, &s); err == nil {
			t.Errorf("CBOR %x decodes as an instant: %v", b, s.Time)
		}
	}
	if d, err := cbor.Diagnose(encode(&apiKeyRec{ID: "k", Created: at(time.UnixMilli(5))})); err != nil || d != `{0: "k", 1: "", 3: null, 4: "", 5: 5}` {
		t.Errorf("a zero instant is not omitted: %s, %v", d, err)
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
		// CBOR: 32 bytes for a digest in hex, the text for anything else.
		cb, err := recordEnc.Marshal(digest(tc.in))
		wantMajor, wantLen := byte(cborText), 1+len(tc.in)+min(1, len(tc.in)/24)
		if len(tc.json) == 45 {
			wantMajor, wantLen = cborBytes, 2+32
		}
		if err != nil || major(cb) != wantMajor || len(cb) != wantLen {
			t.Errorf("%q encodes in CBOR as %x, %v; want major type %d, %d bytes", tc.in, cb, err, wantMajor, wantLen)
		}
		got = ""
		if err := recordDec.Unmarshal(cb, &got); err != nil || string(got) != tc.in {
			t.Errorf("CBOR %x decodes to %q, %v; want %q", cb, got, err, tc.in)
		}
	}
	for _, bad := range []any{[]byte{1, 2, 3}, make([]byte, 33), 7, true} {
		b, _ := recordEnc.Marshal(bad)
		var d digest
		if err := recordDec.Unmarshal(b, &d); err == nil {
			t.Errorf("CBOR %x decodes as a digest: %q", b, d)
		}
	}
}
