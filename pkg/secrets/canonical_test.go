package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Known answers: the canonical form is written out by hand from RFC 8785,
// and the digest was computed independently from those bytes.
func TestCanonicalKnownAnswers(t *testing.T) {
	tests := []struct {
		name      string
		values    map[string]string
		canonical string
		sha256    string
	}{
		{"sorted", map[string]string{"b": "2", "a": "1"}, `{"a":"1","b":"2"}`,
			"21f76dfbfe6dfe21f762080ef484112cf2952974cef30741fd1931e1c6d92112"},
		{"html characters stay literal", map[string]string{"k": "<&>"}, `{"k":"<&>"}`,
			"4a15634d16104e03dc64236de8615b4ba7db7331f8dd40a37bd5f722004672cb"},
		{"quotes and backslashes", map[string]string{"q": `say "hi" \ back`}, `{"q":"say \"hi\" \\ back"}`,
			"9f2d99b43962b8f8bb0a782bdb6e051466140a7c2e3911529a6cbce89f67f3bb"},
		{"control characters", map[string]string{"c": "\x00\x01\b\t\n\f\r\x1f\x7f"}, `{"c":"\u0000\u0001\b\t\n\f\r\u001f` + "\x7f" + `"}`,
			"12643021bce6d46d912178958b79e93546e2343131aca8414a6a7bfa847dd658"},
		{"line and paragraph separators stay literal", map[string]string{"l": "a\u2028b\u2029c"}, "{\"l\":\"a\u2028b\u2029c\"}",
			"60102d1702a72d5074d05807e9a7f51140a16f765ed5acd09a9fb58a8fceae50"},
		{"non-ASCII", map[string]string{"n": "café ünï € 日本"}, `{"n":"café ünï € 日本"}`,
			"8a8ca3a895b57d7fe4da3317aaf3f7e770189f69d40c78d21c5a827f1caa226e"},
		{"astral", map[string]string{"s": "😀𝄞"}, `{"s":"😀𝄞"}`,
			"b5ed318ed1ebfee0d9e89c5a88b8dcce563831e6dd70314c193c291065d0cca4"},
		{"keys sort by UTF-16, not bytes", map[string]string{"\ue000": "a", "😀": "b", "a": "c"}, "{\"a\":\"c\",\"😀\":\"b\",\"\ue000\":\"a\"}",
			"d16cca358ab3d36e0e68f1f469d8a8986d0cc5d86b0e5b607d0d7efc5bfbf2fd"},
		{"RFC 8785 section 3.2.3", map[string]string{
			"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
			"1": "One", "\U0001F600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis",
		}, "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
			"5e321556d22018a9656991a9e94f77ec175fa193e52a2429d312f8419ec8b08c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Canonical(tt.values)); got != tt.canonical {
				t.Errorf("Canonical = %q, want %q", got, tt.canonical)
			}
			if got := Digest(tt.values); got != tt.sha256 {
				t.Errorf("Digest = %s, want %s", got, tt.sha256)
			}
		})
	}
}

func TestCanonicalIsValidJSONThatRoundTrips(t *testing.T) {
	in := map[string]string{"a": "\x00\u2028\"\\<>", "b": "😀", "c": ""}
	var out map[string]string
	if err := json.Unmarshal(Canonical(in), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("round trip lost members: %v", out)
	}
	for k, v := range in {
		if out[k] != v {
			t.Errorf("key %q: got %q, want %q", k, out[k], v)
		}
	}
}

func TestCanonicalInvalidUTF8BecomesReplacement(t *testing.T) {
	got := string(Canonical(map[string]string{"k": "a\xffb"}))
	if want := "{\"k\":\"a\uFFFDb\"}"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// FuzzCanonical checks Canonical against an independent reading: whatever
// the input, the output is valid JSON that decodes to the same object (after
// the decoder's own U+FFFD substitution), and re-canonicalising is stable.
func FuzzCanonical(f *testing.F) {
	f.Add("a", "1", "b", "<&>\u2028")
	f.Add("\ue000", "x", "😀", "\x00\x1f\x7f")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		if !utf8.ValidString(k1) || !utf8.ValidString(k2) {
			// Two invalid keys may both decode to U+FFFD; keys reach
			// Canonical only after JSON decoding, which makes them valid.
			return
		}
		in := map[string]string{k1: v1, k2: v2}
		c := Canonical(in)
		var out map[string]string
		if err := json.Unmarshal(c, &out); err != nil {
			t.Fatalf("Canonical produced invalid JSON %q: %v", c, err)
		}
		if again := Canonical(out); string(again) != string(c) {
			t.Fatalf("not stable: %q then %q", c, again)
		}
		sum := sha256.Sum256(c)
		if Digest(in) != hex.EncodeToString(sum[:]) {
			t.Fatal("Digest is not the SHA-256 of Canonical")
		}
	})
}

// AppendJSONString writes what encoding/json writes with HTML escaping
// off; Canonical's strings differ from it exactly where RFC 8785 asks.
func TestAppendJSONString(t *testing.T) {
	for _, c := range []struct {
		name, in, want, canonical string
	}{
		{"plain", "sk-live", `"sk-live"`, `"sk-live"`},
		{"empty", "", `""`, `""`},
		{"quotes and backslash", `a"b\c`, `"a\"b\\c"`, `"a\"b\\c"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{"other control characters", "\x00\x1f", `"\u0000\u001f"`, `"\u0000\u001f"`},
		{"HTML stays literal", "<a&b>", `"<a&b>"`, `"<a&b>"`},
		{"DEL and non-ASCII stay literal", "\x7fé😀", "\"\x7fé😀\"", "\"\x7fé😀\""},
		{"line separators escaped, literal in RFC 8785", "a\u2028b\u2029", `"a\u2028b\u2029"`, "\"a\u2028b\u2029\""},
		{"invalid UTF-8 an escape, a literal U+FFFD in RFC 8785", "a\xffb", `"a\ufffdb"`, "\"a\uFFFDb\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(AppendJSONString([]byte("x:"), c.in))
			if got != "x:"+c.want {
				t.Errorf("AppendJSONString(%q) = %s, want %s", c.in, got, c.want)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(c.in); err != nil || strings.TrimSuffix(buf.String(), "\n") != c.want {
				t.Errorf("encoding/json writes %s, want %s", buf.String(), c.want)
			}
			var back string
			if err := json.Unmarshal([]byte(c.want), &back); err != nil {
				t.Errorf("%s does not decode: %v", c.want, err)
			}
			if canon := string(Canonical(map[string]string{"k": c.in})); canon != `{"k":`+c.canonical+`}` {
				t.Errorf("Canonical of %q = %s, want the string %s", c.in, canon, c.canonical)
			}
		})
	}
}
