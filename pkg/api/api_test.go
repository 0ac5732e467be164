package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// An update's date has three forms on the wire: absent, null, a time.
func TestNullableTime(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("x", 3600))
	for _, c := range []struct {
		name string
		in   api.UpdateSecretRequest
		want string
	}{
		{"absent", api.UpdateSecretRequest{}, `{}`},
		{"cleared", api.UpdateSecretRequest{ExpiresAt: api.ClearTime()}, `{"expires_at":null}`},
		{"set, in UTC", api.UpdateSecretRequest{RotateBy: api.SetTime(at)}, `{"rotate_by":"2026-01-02T02:04:05.6Z"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.in)
			if err != nil || string(b) != c.want {
				t.Fatalf("%s, %v; want %s", b, err, c.want)
			}
			var back api.UpdateSecretRequest
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct{ got, sent api.NullableTime }{{back.ExpiresAt, c.in.ExpiresAt}, {back.RotateBy, c.in.RotateBy}} {
				if p.got.Null != p.sent.Null || !p.got.Time.Equal(p.sent.Time) {
					t.Errorf("decoded %+v, sent %+v", p.got, p.sent)
				}
			}
		})
	}
	var n api.NullableTime
	if err := json.Unmarshal([]byte(`"tomorrow"`), &n); err == nil {
		t.Error("a date that is not RFC 3339 decoded")
	}
}
