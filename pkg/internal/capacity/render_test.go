package capacity_test

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/internal/capacity"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// label names the item at k by the domain's layout (pkg/secrets/layout.go).
func label(k kv.Key) string {
	p, s := k.Partition, k.Sort
	switch {
	case p == "M" && s == "keycheck":
		return "key check"
	case p == "M":
		return "service key"
	case strings.HasPrefix(p, "K#"):
		return "API key"
	case strings.HasPrefix(p, "A#") && strings.HasPrefix(s, "R#"):
		return "audit record"
	case strings.HasPrefix(p, "A#") && strings.HasPrefix(s, "L#"):
		return "last use"
	case strings.Contains(p, "#S#") && strings.HasPrefix(s, "V#"):
		return "version"
	case strings.Contains(p, "#S#") && strings.HasPrefix(s, "C#"):
		return "ciphertext"
	case strings.HasPrefix(s, "S#"):
		return "secret record"
	case strings.HasPrefix(s, "N#"):
		return "name item"
	case strings.HasPrefix(s, "K#"):
		return "API key listing"
	case strings.HasPrefix(s, "G#"):
		return "grant"
	case strings.HasPrefix(s, "T#"):
		return "trash record"
	case strings.HasPrefix(p, "E#"):
		return "change event"
	case p == "Q#reminders":
		return "reminder"
	case p == "Q#purges":
		return "purge due"
	}
	return k.String()
}

// partitionLabel names a partition by the layout, for the hot-secret
// table.
func partitionLabel(p string) string {
	switch {
	case p == "M":
		return "the service's meta partition"
	case strings.HasPrefix(p, "A#") && strings.HasSuffix(p, hottest):
		return "the hottest audit partition of the secret"
	case strings.HasPrefix(p, "A#") && strings.HasSuffix(p, merged):
		return "the secret's one audit partition"
	case strings.HasPrefix(p, "A#") && strings.HasSuffix(p, "#lr"):
		return "the secret's last-use partition"
	case strings.HasPrefix(p, "A#"):
		return "an audit partition of the secret"
	case strings.Contains(p, "#S#"):
		return "the secret's partition"
	case strings.HasPrefix(p, "P#"):
		return "the project's partition"
	case strings.HasPrefix(p, "E#"):
		return "the project's change feed"
	}
	return p
}

var verbs = map[capacity.Kind]string{capacity.Read: "read", capacity.Write: "put", capacity.Delete: "delete", capacity.Check: "check"}

// describe says what a call did: each kind of item it touched, how many
// and their sizes.
func describe(c *capacity.Call) string {
	type group struct {
		what  string
		n     int
		bytes []int
	}
	var groups []*group
	for _, it := range c.Items {
		what := verbs[it.Kind] + " " + label(it.Key)
		i := slices.IndexFunc(groups, func(g *group) bool { return g.what == what })
		if i < 0 {
			groups = append(groups, &group{what: what})
			i = len(groups) - 1
		}
		groups[i].n++
		groups[i].bytes = append(groups[i].bytes, it.Bytes)
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return strings.Compare(a.what, b.what) })
	parts := make([]string, len(groups))
	for i, g := range groups {
		slices.Sort(g.bytes)
		switch {
		case g.n == 1 && g.bytes[0] == 0:
			parts[i] = g.what + " (none there)"
		case g.n == 1:
			parts[i] = fmt.Sprintf("%s %s B", g.what, num(g.bytes[0]))
		case g.bytes[0] == g.bytes[g.n-1]:
			parts[i] = fmt.Sprintf("%s ×%d, %s B each", g.what, g.n, num(g.bytes[0]))
		default:
			total := 0
			for _, b := range g.bytes {
				total += b
			}
			parts[i] = fmt.Sprintf("%s ×%d, %s–%s B, %s B together", g.what, g.n, num(g.bytes[0]), num(g.bytes[g.n-1]), num(total))
		}
	}
	op := c.Op
	if c.Op == "Query" {
		op += " of " + partitionLabel(c.Charges[0].Partition)
	}
	if len(parts) == 0 {
		parts = []string{"no item"}
	}
	return fmt.Sprintf("%s (%s): %s", op, units(c.RCU(), c.WCU()), strings.Join(parts, "; "))
}

// units is "2 RCU", "4 WCU", "2 RCU, 4 WCU" or "0".
func units(rcu, wcu float64) string {
	var us []string
	if rcu > 0 {
		us = append(us, unit(rcu)+" RCU")
	}
	if wcu > 0 {
		us = append(us, unit(wcu)+" WCU")
	}
	if len(us) == 0 {
		return "0"
	}
	return strings.Join(us, ", ")
}

func unit(u float64) string { return strconv.FormatFloat(u, 'f', -1, 64) }

// num writes n with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func rate(r float64) string {
	if math.IsInf(r, 1) {
		return "unbounded"
	}
	return num(int(math.Floor(r)))
}

// renderRows is the table of operations.
func renderRows(rows []row) string {
	var b strings.Builder
	b.WriteString("| Operation | DynamoDB calls (units): items and their sizes | RCU | WCU |\n|---|---|--:|--:|\n")
	for _, r := range rows {
		var calls []string
		for i := range r.calls {
			calls = append(calls, describe(&r.calls[i]))
		}
		if len(calls) == 0 {
			calls = []string{"none"}
		}
		rcu, wcu := capacity.Sum(r.calls)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.op, strings.Join(calls, "<br>"), unit(rcu), unit(wcu))
	}
	return b.String()
}
