package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// maxValuesInput bounds a values file or --values argument. The server's own
// limit (64 KiB of canonical JSON) is smaller; this only stops runaway input.
const maxValuesInput = 4 << 20

// valuesInput is the values object of a version, given inline (--values) or
// from a file (--file) with ${VAR} substitution (--var).
type valuesInput struct {
	inline string
	file   string
	vars   []string
}

const valuesHelp = `The values object is one JSON object of string keys to string values. Give it
with --file (recommended: it keeps secrets out of your shell history; "-" reads
standard input) or inline with --values. In a file, each ${VAR} is replaced by
the --var VAR=VALUE given (an unknown ${VAR} is an error, an unused --var a
warning) and $${ stands for a literal ${. The JSON is read strictly: a key
given twice, or a string that is not valid Unicode (bytes that are not UTF-8,
a lone surrogate escape such as \ud800), is refused. Values are never
printed.`

func (v *valuesInput) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&v.inline, "values", "", `values as a JSON object, e.g. '{"api_key":"sk-..."}' (prefer --file)`)
	f.StringVar(&v.file, "file", "", `read the values object from a JSON file ("-" for standard input)`)
	f.StringArrayVar(&v.vars, "var", nil, "replace ${VAR} in --file with VALUE (VAR=VALUE, repeatable)")
}

// given reports whether the command line gives values at all.
func (v *valuesInput) given(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("values") || cmd.Flags().Changed("file")
}

// load reads, substitutes and checks the values. Every problem is a usage
// error naming the place (file:line, or the key), and never a value.
func (v *valuesInput) load(cmd *cobra.Command, stdin io.Reader) (map[string]string, error) {
	f := cmd.Flags()
	switch {
	case f.Changed("values") && f.Changed("file"):
		return nil, usagef("give either --values or --file, not both")
	case f.Changed("values"):
		if len(v.vars) > 0 {
			return nil, usagef("--var applies to --file only")
		}
		if len(v.inline) > maxValuesInput {
			return nil, usagef("--values is larger than %d bytes", maxValuesInput)
		}
		return parseValues([]byte(v.inline), "--values")
	case f.Changed("file"):
		vars, err := parseVars(v.vars)
		if err != nil {
			return nil, err
		}
		name, data, err := readValuesFile(v.file, stdin)
		if err != nil {
			return nil, err
		}
		defer clear(data)
		used := map[string]bool{}
		text, err := substitute(data, name, vars, used)
		if err != nil {
			return nil, err
		}
		defer clear(text)
		values, err := parseValues(text, name)
		if err != nil {
			return nil, err
		}
		// Likely a typo or the wrong file; not an error, since one
		// script may pass the same --var set to several files.
		for _, n := range slices.Sorted(maps.Keys(vars)) {
			if !used[n] {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --var %s is not used by %s\n", n, name)
			}
		}
		return values, nil
	default:
		if len(v.vars) > 0 {
			return nil, usagef("--var applies to --file only")
		}
		return nil, usagef("give the values with --file FILE or --values JSON")
	}
}

func readValuesFile(path string, stdin io.Reader) (string, []byte, error) {
	return readInputFile(path, stdin, maxValuesInput, "")
}

// readInputFile reads --file's path ("-" for stdin), at most limit bytes;
// over, the usage error says so, followed by why. It names the file, and
// never quotes what it read.
func readInputFile(path string, stdin io.Reader, limit int, why string) (string, []byte, error) {
	if path == "" {
		return "", nil, usagef("--file needs a path (or - for standard input)")
	}
	name, r := path, stdin
	if path == "-" {
		name = "<stdin>"
	} else {
		fh, err := os.Open(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", nil, usagef("--file %s: %v", path, err)
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return "", nil, usagef("--file %s: %v", name, err)
	}
	if len(data) > limit {
		return "", nil, usagef("%s is larger than %d bytes%s", name, limit, why)
	}
	return name, data, nil
}

// parseVars reads --var NAME=VALUE arguments. A malformed one is named by
// its position, never echoed: it may be a value.
func parseVars(args []string) (map[string]string, error) {
	vars := make(map[string]string, len(args))
	for i, a := range args {
		name, val, ok := strings.Cut(a, "=")
		if !ok {
			return nil, usagef("--var #%d is malformed: want NAME=VALUE", i+1)
		}
		if !validVarName(name) {
			return nil, usagef("--var #%d: the name before '=' must be letters, digits and _, not starting with a digit", i+1)
		}
		if !utf8.ValidString(val) {
			// It would reach the JSON as U+FFFD: not what was given.
			return nil, usagef("--var %s: the value is not valid UTF-8 text", name)
		}
		vars[name] = val
	}
	return vars, nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// substitute replaces each ${VAR} in data with the variable's value escaped
// for a JSON string, and each $${ with ${. The escaping keeps line numbers
// (a value's newlines become \n), so later errors still point at the file.
// Each variable it uses is set in used.
func substitute(data []byte, name string, vars map[string]string, used map[string]bool) ([]byte, error) {
	var out bytes.Buffer
	line := 1
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\n':
			line++
		case c == '$' && bytes.HasPrefix(data[i:], []byte("$${")):
			out.WriteString("${")
			i += 3
			continue
		case c == '$' && bytes.HasPrefix(data[i:], []byte("${")):
			end := bytes.IndexByte(data[i+2:], '}')
			if end < 0 || bytes.IndexByte(data[i+2:i+2+end], '\n') >= 0 {
				return nil, usagef("%s:%d: ${ is not closed by }; write $${ for a literal ${", name, line)
			}
			v := string(data[i+2 : i+2+end])
			if !validVarName(v) {
				return nil, usagef("%s:%d: malformed variable reference: want ${NAME} with letters, digits and _; write $${ for a literal ${", name, line)
			}
			val, ok := vars[v]
			if !ok {
				return nil, usagef("%s:%d: unknown variable ${%s}: give it with --var %s=VALUE", name, line, v, v)
			}
			used[v] = true
			q := secrets.AppendJSONString(nil, val)
			out.Write(q[1 : len(q)-1]) // between the template's own quotes
			i += 2 + end + 1
			continue
		}
		out.WriteByte(c)
		i++
	}
	return out.Bytes(), nil
}

// jsonEscape returns s, valid UTF-8, as the inside of a JSON string
// literal.
func jsonEscape(s string) []byte {
	q, _ := jsontext.AppendQuote(nil, s)
	return q[1 : len(q)-1]
}

// parseValues decodes a JSON object of string values, strictly
// (internal/strictjson): no key twice, no string that is not valid
// Unicode (invalid UTF-8, a lone surrogate escape such as \ud800), one
// object and nothing after it. Errors name where (file:line, or the key)
// and never quote the input.
func parseValues(data []byte, name string) (map[string]string, error) {
	where := func(off int64) string {
		if name == "--values" {
			return name
		}
		return fmt.Sprintf("%s:%d", name, 1+bytes.Count(data[:min(max(int(off), 0), len(data))], []byte("\n")))
	}
	if err := strictjson.Valid(data); err != nil {
		var e *strictjson.Error
		if !errors.As(err, &e) {
			return nil, usagef("%s: invalid JSON", name)
		}
		return nil, valuesError(e, name, where(e.Offset))
	}
	dec := strictjson.NewDecoder(data)
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() != '{' {
		return nil, usagef("%s: the values must be a JSON object of string keys to string values", where(dec.InputOffset()))
	}
	values := map[string]string{}
	for dec.PeekKind() == '"' {
		kt, err := dec.ReadToken()
		if err != nil {
			return nil, usagef("%s: invalid JSON", where(dec.InputOffset()))
		}
		key := kt.String()
		at := dec.InputOffset()
		if _, dup := values[key]; dup {
			return nil, usagef("%s: key %q appears twice", where(at), secrets.Shorten(key, 40))
		}
		vt, err := dec.ReadToken()
		if err != nil {
			return nil, usagef("%s: invalid JSON", where(at))
		}
		if vt.Kind() != '"' {
			return nil, usagef("%s: the value of %q must be a string", where(at), secrets.Shorten(key, 40))
		}
		values[key] = vt.String()
	}
	return values, nil
}

// valuesError describes a strict decoding error of a values object at
// where, naming the key it is in and never quoting a value.
func valuesError(e *strictjson.Error, name, where string) error {
	in := ""
	switch {
	case e.Pointer == "":
	case e.Pointer.Parent() == "":
		in = fmt.Sprintf(" (the value of %q)", secrets.Shorten(e.Name(), 40))
	default:
		in = fmt.Sprintf(" (at %s)", strictjson.Where(e.Pointer))
	}
	switch e.Kind {
	case strictjson.DuplicateName:
		if p := e.Pointer.Parent(); p != "" {
			return usagef("%s: key %q appears twice (in %s)", where, secrets.Shorten(e.Name(), 40), strictjson.Where(p))
		}
		return usagef("%s: key %q appears twice", where, secrets.Shorten(e.Name(), 40))
	case strictjson.InvalidUTF8:
		return usagef("%s: not valid UTF-8 text%s", where, in)
	case strictjson.LoneSurrogate:
		return usagef(`%s: a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair) is not a character%s`, where, in)
	case strictjson.Trailing:
		return usagef("%s: invalid JSON: data after the values object", where)
	}
	if name == "--values" {
		return usagef("--values is not valid JSON (error at character %d)", e.Offset)
	}
	return usagef("%s: invalid JSON", where)
}

// utf8Prefix is the length of the longest valid UTF-8 prefix of b.
func utf8Prefix(b []byte) int {
	n := 0
	for n < len(b) {
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		n += size
	}
	return n
}
