package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
	"github.com/mobius-secrets/mobius/pkg/secrets"
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
	if s.PendingVersion != nil {
		t.row("Pending version:", strconv.Itoa(*s.PendingVersion)+" (read by @pending; promote-version makes it current)")
	}
	t.row("Latest version:", strconv.Itoa(s.LatestVersion))
	if s.PreviousVersion != nil && s.PreviousUntil != nil {
		what := "resolvable as @previous until " + c.when(*s.PreviousUntil)
		if !s.PreviousUntil.After(c.now()) {
			what = "its grace ended " + c.when(*s.PreviousUntil)
		}
		t.row("Previous:", strconv.Itoa(*s.PreviousVersion)+" ("+what+")")
	}
	t.row("Previous grace:", spanOr(s.PreviousGraceSeconds, "none"))
	t.row("Alias on rename:", spanOr(s.RenameAliasSeconds, "none"))
	if len(s.Aliases) > 0 {
		t.row("Aliases:", c.aliasesCell(s.Aliases))
	}
	t.row("Labels:", labelsCell(s.Labels, 0))
	t.row("Expires:", c.whenOr(s.ExpiresAt, "-"))
	t.row("Rotate by:", c.whenOr(s.RotateBy, "-"))
	t.row("Created:", c.when(s.CreatedAt))
	t.row("Updated:", c.when(s.UpdatedAt))
	return t.flush()
}

func (c *cli) aliasesCell(list []api.SecretAlias) string {
	parts := make([]string, len(list))
	for i, a := range list {
		parts[i] = a.Name + " (until " + c.when(a.Until) + ")"
	}
	return strings.Join(parts, ", ")
}

// labelsCell shows labels as k=v, sorted by key, shortened to n bytes (0:
// not shortened).
func labelsCell(labels map[string]string, n int) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	s := strings.Join(parts, ",")
	if n > 0 {
		s = secrets.Shorten(s, n)
	}
	return s
}

// spanOr shows a number of seconds as the flags take it (7d, 1h), or
// none for 0.
func spanOr(seconds int64, none string) string {
	if seconds == 0 {
		return none
	}
	return days(time.Duration(seconds) * time.Second)
}

// whenOr is when, or none for a nil time.
func (c *cli) whenOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return c.when(*t)
}

func (c *cli) printVersion(v *client.Version) error {
	if c.json() {
		return c.printRaw(v.Raw)
	}
	t := newTable(c.stdout)
	t.row("Version:", strconv.Itoa(v.Number))
	t.row("State:", v.State)
	t.row("SHA-256:", v.SHA256)
	t.row("Keys:", keysCell(v.Keys))
	t.row("Created:", c.when(v.CreatedAt))
	t.row("State changed:", c.when(v.StateChangedAt))
	t.row("Last resolved:", c.whenp(v.LastResolvedAt))
	return t.flush()
}

func (c *cli) printSecretList(list []*client.Secret) error {
	t := newTable(c.stdout, "NAME", "CURRENT", "PENDING", "LATEST", "LABELS", "EXPIRES", "UPDATED", "DESCRIPTION")
	for _, s := range list {
		pending := "-"
		if s.PendingVersion != nil {
			pending = strconv.Itoa(*s.PendingVersion)
		}
		t.row(s.Name, optInt(s.CurrentVersion), pending, strconv.Itoa(s.LatestVersion), labelsCell(s.Labels, 40),
			c.whenOr(s.ExpiresAt, "-"), c.when(s.UpdatedAt), secrets.Shorten(s.Description, 60))
	}
	return t.flush()
}

func (c *cli) printVersionList(list []*client.Version) error {
	t := newTable(c.stdout, "VERSION", "STATE", "SHA256", "KEYS", "CREATED", "STATE CHANGED", "LAST RESOLVED")
	for _, v := range list {
		t.row(strconv.Itoa(v.Number), v.State, shortDigest(v.SHA256), keysCell(v.Keys), c.when(v.CreatedAt), c.when(v.StateChangedAt), c.whenp(v.LastResolvedAt))
	}
	return t.flush()
}

func (c *cli) printTrash(list []*client.TrashedSecret) error {
	t := newTable(c.stdout, "ID", "NAME", "LATEST", "DELETED", "PURGED AFTER")
	for _, s := range list {
		t.row(s.Secret.ID, s.Secret.Name, strconv.Itoa(s.Secret.LatestVersion), c.when(s.TrashedAt), c.when(s.PurgeAt))
	}
	return t.flush()
}

// printConsumers shows each version with the runs and steps that read it:
// one row per consumer, a version read by none in the window on a row of
// its own.
func (c *cli) printConsumers(l *client.ConsumerList) error {
	t := newTable(c.stdout, "VERSION", "STATE", "LAST RESOLVED", "RUN", "STEP", "READS", "LAST SEEN")
	for _, v := range l.Versions {
		if len(v.Consumers) == 0 {
			t.row(strconv.Itoa(v.Version), v.State, c.whenp(v.LastResolvedAt), "-", "-", "0", "-")
			continue
		}
		for _, r := range v.Consumers {
			t.row(strconv.Itoa(v.Version), v.State, c.whenp(v.LastResolvedAt), runCell(r.Run), runCell(r.Step), strconv.Itoa(r.Count), c.whenExact(r.LastSeen))
		}
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
	return secrets.Shorten(b.String(), 80)
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
