package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mobius-secrets/mobius/pkg/client"
)

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// cell keeps a table cell on one line and out of the column syntax, and
// keeps what the server stored from driving the terminal: whitespace
// controls become spaces, every other control character (C0, DEL, C1:
// escape sequences, bells) becomes U+FFFD.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return utf8.RuneError
		}
		return r
	}, s)
}

// when formats a time as a short local date, "-" for none.
func (c *cli) when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(c.loc).Format("2006-01-02 15:04")
}

// whenExact is when to the second, for audit records: several calls in one
// minute stay apart.
func (c *cli) whenExact(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(c.loc).Format("2006-01-02 15:04:05")
}

func (c *cli) whenp(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return c.when(*t)
}

func optInt(n *int) string {
	if n == nil {
		return "none"
	}
	return strconv.Itoa(*n)
}

func keysCell(keys []string) string { return strings.Join(keys, ",") }

func (c *cli) printSecret(s *client.Secret) error {
	if c.json() {
		return c.printRaw(s.Raw)
	}
	t := newTable(c.stdout)
	t.row("Name:", s.Name)
	t.row("ID:", s.ID)
	t.row("Project:", s.Project)
	t.row("Description:", s.Description)
	t.row("Current version:", optInt(s.CurrentVersion))
	t.row("Latest version:", strconv.Itoa(s.LatestVersion))
	t.row("Created:", c.when(s.CreatedAt))
	t.row("Updated:", c.when(s.UpdatedAt))
	return t.flush()
}

func (c *cli) printVersion(v *client.Version) error {
	if c.json() {
		return c.printRaw(v.Raw)
	}
	t := newTable(c.stdout)
	t.row("Version:", strconv.Itoa(v.Version))
	t.row("State:", v.State)
	t.row("SHA-256:", v.SHA256)
	t.row("Keys:", keysCell(v.Keys))
	t.row("Created:", c.when(v.CreatedAt))
	t.row("State changed:", c.when(v.StateChangedAt))
	return t.flush()
}

func (c *cli) printSecretList(list []*client.Secret) error {
	t := newTable(c.stdout, "NAME", "CURRENT", "LATEST", "UPDATED", "DESCRIPTION")
	for _, s := range list {
		t.row(s.Name, optInt(s.CurrentVersion), strconv.Itoa(s.LatestVersion), c.when(s.UpdatedAt), shorten(s.Description, 60))
	}
	return t.flush()
}

func (c *cli) printVersionList(list []*client.Version) error {
	t := newTable(c.stdout, "VERSION", "STATE", "SHA256", "KEYS", "CREATED", "STATE CHANGED")
	for _, v := range list {
		t.row(strconv.Itoa(v.Version), v.State, shortDigest(v.SHA256), keysCell(v.Keys), c.when(v.CreatedAt), c.when(v.StateChangedAt))
	}
	return t.flush()
}

func (c *cli) printResolutionList(list []*client.Resolution) error {
	t := newTable(c.stdout, "RESOLVED", "VERSION", "KEYS", "RUN")
	for _, r := range list {
		t.row(c.whenExact(r.ResolvedAt), strconv.Itoa(r.Version), keysCell(r.Keys), runCell(r.Run))
	}
	return t.flush()
}

func (c *cli) printKeyList(list []*client.APIKey) error {
	t := newTable(c.stdout, "ID", "NAME", "SCOPES", "CREATED", "LAST USED")
	for _, k := range list {
		t.row(k.ID, k.Name, keysCell(k.Scopes), c.when(k.CreatedAt), c.whenp(k.LastUsedAt))
	}
	return t.flush()
}

// shortDigest is the first 12 hex digits, as `git log --oneline` shows.
func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// runCell shows the caller's run identifiers compactly.
func runCell(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "-"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "-"
	}
	return shorten(b.String(), 80)
}

// joinPages writes the items of every page as one answer of the API's shape:
// {"<field>": [...], "next_page_token": ""}. One page is printed as it came.
func (c *cli) printPages(field string, pages []json.RawMessage, items []json.RawMessage) error {
	if len(pages) == 1 {
		return c.printRaw(pages[0])
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{%q:[", field)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString(`],"next_page_token":""}`)
	return c.printRaw(b.Bytes())
}
