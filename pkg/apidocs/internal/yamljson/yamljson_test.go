package yamljson

import (
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"keeps key order", "b: 1\na: 2\nc: 3\n", `{"b":1,"a":2,"c":3}`},
		{"scalars", "s: x\nq: '200'\ni: 200\nf: 1.5\nt: true\nn: null\ne: ''\n",
			`{"s":"x","q":"200","i":200,"f":1.5,"t":true,"n":null,"e":""}`},
		{"numeric keys become strings", "200: ok\n", `{"200":"ok"}`},
		{"sequences and flow style", "a: [x, 'y', 3]\nb:\n  - {k: v}\n", `{"a":["x","y",3],"b":[{"k":"v"}]}`},
		{"block text and no HTML escaping", "d: |\n  a <b> & c\n  line 2\n", `{"d":"a <b> & c\nline 2\n"}`},
		{"aliases", "x: &v {k: 1}\ny: *v\n", `{"x":{"k":1},"y":{"k":1}}`},
		{"pattern with backslashes", `p: ^\d+$` + "\n", `{"p":"^\\d+$"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Convert([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			compact := strings.Join(strings.Fields(string(got)), "")
			want := strings.Join(strings.Fields(c.want), "")
			if compact != want {
				t.Errorf("Convert(%q) = %s, want %s", c.in, got, c.want)
			}
			if !strings.HasSuffix(string(got), "\n") {
				t.Errorf("output does not end in a newline")
			}
		})
	}
}

func TestConvertRejects(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"duplicate key", "a: 1\na: 2\n", "a"},
		{"merge key", "x: &v {k: 1}\ny:\n  <<: *v\n", "merge"},
		{"infinity", "x: .inf\n", "JSON"},
		{"syntax", "a: [1\n", "parsing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Convert([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Convert(%q) error = %v, want one mentioning %q", c.in, err, c.want)
			}
		})
	}
}
