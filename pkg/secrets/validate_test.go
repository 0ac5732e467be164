package secrets

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"openai", true}, {"a", true}, {"0day", true}, {"A_b-C", true}, {strings.Repeat("x", 128), true},
		{"", false}, {"_lead", false}, {"-lead", false}, {"has space", false}, {"dot.ted", false},
		{strings.Repeat("x", 129), false}, {"café", false}, {"sec_01HZY3Q7K8V2N4M6P8R0S2T4W6", false},
		{"sec_short", true},
	} {
		if got := ValidName(tt.name); got != tt.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, tt := range []struct {
		key string
		ok  bool
	}{
		{"api_key", true}, {"_private", true}, {"-x", true}, {strings.Repeat("k", 128), true},
		{"", false}, {"a.b", false}, {"a b", false}, {strings.Repeat("k", 129), false},
	} {
		if got := ValidKey(tt.key); got != tt.ok {
			t.Errorf("ValidKey(%q) = %v, want %v", tt.key, got, tt.ok)
		}
	}
}

func TestValidateValues(t *testing.T) {
	if _, err := ValidateValues(nil); ErrorCode(err) != Invalid || ErrorField(err) != "values" {
		t.Errorf("empty values: %v", err)
	}
	if _, err := ValidateValues(map[string]string{"bad key": "canary-v-1"}); ErrorCode(err) != Invalid {
		t.Errorf("bad key: %v", err)
	} else if strings.Contains(err.Error(), "canary") {
		t.Errorf("error leaks the value: %v", err)
	}
	big := strings.Repeat("x", MaxPlaintext)
	if _, err := ValidateValues(map[string]string{"k": big}); ErrorCode(err) != TooLarge {
		t.Errorf("oversized: %v", err)
	}
	// Exactly at the limit is fine: {"k":"…"} is 8 bytes of framing.
	if _, err := ValidateValues(map[string]string{"k": big[:MaxPlaintext-8]}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

func TestParseVersionRef(t *testing.T) {
	for in, want := range map[string]int{"current": 0, "1": 1, "42": 42} {
		if got, err := ParseVersionRef(in); err != nil || got != want {
			t.Errorf("ParseVersionRef(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "+1", "01", "1.5", "abc", "99999999999", "CURRENT"} {
		if _, err := ParseVersionRef(bad); ErrorCode(err) != Invalid {
			t.Errorf("ParseVersionRef(%q) err = %v, want Invalid", bad, err)
		}
	}
}

func TestULID(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	a := NewULID(at, bytes.NewReader(make([]byte, 10)))
	b := NewULID(at.Add(time.Millisecond), bytes.NewReader(make([]byte, 10)))
	if len(a) != 26 || !(a < b) {
		t.Fatalf("ULIDs %q, %q: want 26 chars in time order", a, b)
	}
	if !IsSecretID("sec_"+a) || IsSecretID("sec_"+a[:25]) || IsSecretID("sec_"+strings.ToLower(a)) {
		t.Error("IsSecretID disagrees with NewULID")
	}
	if IsSecretID("sec_" + a[:25] + "U") {
		t.Error("U is not a Crockford digit")
	}
}

func TestErrorHelpers(t *testing.T) {
	err := FieldErrorf(Invalid, "name", "bad %s", "name")
	if ErrorCode(err) != Invalid || ErrorField(err) != "name" || ErrorMessage(err) != "bad name" {
		t.Errorf("got %v", err)
	}
	wrapped := WrapError(Internal, err, "outer")
	if ErrorMessage(wrapped) != "internal error" {
		t.Errorf("internal errors must not show detail: %q", ErrorMessage(wrapped))
	}
	if ErrorCode(bytes.ErrTooLarge) != Internal || ErrorCode(nil) != "" {
		t.Error("ErrorCode of foreign/nil errors")
	}
}

func TestValidateDescription(t *testing.T) {
	for _, c := range []struct {
		d  string
		ok bool
	}{
		{"", true},
		{"OpenAI key used by the summarizer.", true},
		{"line one\nline two\r\n\tindented", true},
		{"café ☕ 日本 \u2028", true},
		{strings.Repeat("é", MaxDescriptionLen), true},
		{strings.Repeat("é", MaxDescriptionLen+1), false},
		{"\xff", false},
		{"esc \x1b[2J", false},
		{"bell \a", false},
		{"nul \x00", false},
		{"del \x7f", false},
		{"csi \u009b2K", false},
		{"nel \u0085", false},
	} {
		err := validateDescription(c.d)
		if (err == nil) != c.ok {
			t.Errorf("validateDescription(%q) = %v, want ok=%v", c.d, err, c.ok)
		}
		if err != nil && ErrorField(err) != "description" {
			t.Errorf("validateDescription(%q): field %q", c.d, ErrorField(err))
		}
	}
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		name, s string
		n       int
		want    string
	}{
		{"shorter than n", "openai", 10, "openai"},
		{"exactly n", "openai", 6, "openai"},
		{"cut", "openai-prod", 6, "openai…"},
		{"empty", "", 0, ""},
		{"n of 0", "x", 0, "…"},
		{"negative n", "xy", -1, "…"},
		{"cut inside a rune backs off to its start", "ab€cd", 3, "ab…"},                           // € is 3 bytes at 2-4
		{"cut after a whole rune", "ab€cd", 5, "ab€…"},                                            // € ends at 5
		{"cut inside a 4-byte rune", "a😀b", 4, "a…"},                                              // 😀 is 4 bytes at 1-4
		{"a run of invalid bytes is not walked back", "ab\x80\x80\x80\x80\x80\x80", 6, "ab\x80…"}, // 3 bytes back, no further
		{"prefix kept before invalid bytes", "${secret:\x80\x80\x80\x80\x80", 12, "${secret:…"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Shorten(c.s, c.n)
			if got != c.want {
				t.Errorf("Shorten(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
			}
			if len(got) > max(c.n, 0)+len("…") {
				t.Errorf("Shorten(%q, %d) is %d bytes, over n+3", c.s, c.n, len(got))
			}
		})
	}
}
