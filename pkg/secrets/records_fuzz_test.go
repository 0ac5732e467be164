package secrets

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeRecord: any stored bytes decode into a record, or are refused
// as damage; never a panic. A record that decodes encodes to CBOR that
// decodes again and encodes to the same bytes, so what is read back is what
// is rewritten.
func FuzzDecodeRecord(f *testing.F) {
	t1 := time.Date(2026, 12, 2, 4, 11, 33, 36e6, time.UTC)
	sec := &Secret{ID: "sec_01M8TF8VKHTT2JDJR2V7F3K4J5", Project: "acme", Name: "db", Description: "d", CurrentVersion: 2, LatestVersion: 2,
		Aliases: []Alias{{Name: "old", Until: t1, rev: 3}}, Labels: map[string]string{"b": "2", "a": "1"}, ExpiresAt: t1, CreatedAt: t1, UpdatedAt: t1, Revision: 4}
	seeds := [][]byte{
		encode(secretToRec(sec)),
		encode(versionToRec(&Version{Project: "acme", SecretID: sec.ID, Number: 1, State: Enabled, SHA256: "172ec1cfa04db7c5a440541ac68ce8ad168536e83006654940686549b868a917", Keys: []string{"k"}, CreatedAt: t1, StateChangedAt: t1})),
		encode(&aliasRec{AliasOf: sec.ID, Project: "acme", Name: "old", Until: at(t1)}),
		encode(&eventRec{ID: "evt_01M8TF8VKJZNT62ZJVX7KNN44G", Type: EventSecretCreated, Project: "acme", SecretID: sec.ID, At: at(t1)}),
		[]byte(`{"id":"sec_01M8TF8VKHTT2JDJR2V7F3K4J5","p":"acme","n":"db","l":1,"ca":"2026-12-02T04:11:33.036Z","ua":1796184693036,"r":1}`),
		{0xa1, 0x00, 0x7f}, {0xbf, 0xff}, {0xa2, 0x00, 0x60, 0x00, 0x60},
	}
	for i, s := range seeds {
		f.Add(s, uint8(i))
	}
	kinds := []func() any{
		func() any { return &secretRec{} }, func() any { return &versionRec{} }, func() any { return &aliasRec{} },
		func() any { return &eventRec{} }, func() any { return &resolutionRec{} }, func() any { return &trashRec{} },
		func() any { return &grantRec{} }, func() any { return &apiKeyRec{} }, func() any { return &reminderRec{} },
	}
	f.Fuzz(func(t *testing.T, b []byte, kind uint8) {
		newRec := kinds[int(kind)%len(kinds)]
		rec := newRec()
		if decodeRecord(b, rec) != nil {
			return
		}
		once := encode(rec)
		again := newRec()
		if err := decodeRecord(once, again); err != nil {
			t.Fatalf("%x decodes to %+v, whose encoding %x does not decode: %v", b, rec, once, err)
		}
		if twice := encode(again); !bytes.Equal(twice, once) {
			t.Fatalf("%x: encodes as %x, then as %x", b, once, twice)
		}
	})
}
