package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Durations, dates and labels on the command line. Every problem is a
// usage error, found before any request is sent.

// maxDays keeps a number of days inside a time.Duration.
const maxDays = 100000

// parseDuration reads a duration flag: a Go duration (90s, 15m, 1h30m) or
// whole days with a d suffix, optionally followed by a Go duration (7d,
// 30d, 1d12h). Negative durations are refused.
func parseDuration(flag, s string) (time.Duration, error) {
	bad := usagef("invalid %s %q: want a duration such as 90m, 12h, 7d or 1d12h", flag, secrets.Shorten(s, 40))
	var d time.Duration
	rest := s
	if days, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > maxDays || days == "" || days[0] == '+' || days[0] == '-' {
			return 0, bad
		}
		d, rest = time.Duration(n)*24*time.Hour, after
		if rest == "" {
			return d, nil
		}
	}
	if rest == "" || rest[0] == '-' || rest[0] == '+' {
		return 0, bad
	}
	more, err := time.ParseDuration(rest)
	if err != nil || more < 0 || d+more < d {
		return 0, bad
	}
	return d + more, nil
}

// parsePositive is parseDuration for a span that must be longer than 0.
func parsePositive(flag, s string) (time.Duration, error) {
	d, err := parseDuration(flag, s)
	if err == nil && d <= 0 {
		return 0, usagef("%s must be longer than 0, such as 7d", flag)
	}
	return d, err
}

// parseSeconds is parseDuration for a setting the API takes in whole
// seconds, from 0 to limit.
func parseSeconds(flag, s string, limit time.Duration) (*int64, error) {
	d, err := parseDuration(flag, s)
	if err != nil {
		return nil, err
	}
	if d%time.Second != 0 {
		return nil, usagef("%s must be a whole number of seconds, such as 90s, 1h or 7d", flag)
	}
	if d > limit {
		return nil, usagef("%s must be at most %s", flag, days(limit))
	}
	n := int64(d / time.Second)
	return &n, nil
}

// parseTime reads an RFC 3339 time flag (2026-01-02T15:04:05Z).
func parseTime(flag, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("invalid %s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", flag, secrets.Shorten(s, 40))
	}
	return t, nil
}

// parseUntil reads a flag that is a time: RFC 3339, or a duration (7d)
// from now.
func parseUntil(flag, s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if strings.ContainsAny(s, "T:") { // meant as a time
		return parseTime(flag, s)
	}
	d, err := parsePositive(flag, s)
	if err != nil {
		return time.Time{}, usagef("invalid %s %q: want a duration from now such as 7d, or an RFC 3339 time such as 2026-01-02T15:04:05Z", flag, secrets.Shorten(s, 40))
	}
	return now.Add(d), nil
}

// days formats d the way the flags take it: 7d, 1d12h, 90m, 0s.
func days(d time.Duration) string {
	n := d / (24 * time.Hour)
	rest := d % (24 * time.Hour)
	switch {
	case n == 0:
		return shortDuration(rest)
	case rest == 0:
		return strconv.Itoa(int(n)) + "d"
	}
	return strconv.Itoa(int(n)) + "d" + shortDuration(rest)
}

// shortDuration is d.String() without its zero units: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// dateFlags are a secret's two dates as flags of create or update: each set
// by a time (--expires-at) or a span from now (--expires-in), and, on
// update, cleared (--no-expiry).
type dateFlags struct {
	expiresAt, expiresIn, rotateBy, rotateIn string
	noExpiry, noRotateBy                     bool
}

func (f *dateFlags) add(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.expiresAt, "expires-at", "", "when the secret stops resolving, RFC 3339 (2026-06-01T00:00:00Z)")
	fl.StringVar(&f.expiresIn, "expires-in", "", "when the secret stops resolving, from now (30d, 12h)")
	fl.StringVar(&f.rotateBy, "rotate-by", "", "when the secret should be rotated, RFC 3339 (reminders 7 days and 1 day before)")
	fl.StringVar(&f.rotateIn, "rotate-in", "", "when the secret should be rotated, from now (90d)")
	if update {
		fl.BoolVar(&f.noExpiry, "no-expiry", false, "clear the expiry date")
		fl.BoolVar(&f.noRotateBy, "no-rotate-by", false, "clear the rotate-by date")
	}
}

// date reads one date's flags: nil when none is given, the zero time when
// it is cleared.
func date(cmd *cobra.Command, now time.Time, atFlag, at, inFlag, in, clearFlag string, clear bool) (*time.Time, error) {
	fl := cmd.Flags()
	given := []string{}
	for _, n := range []string{atFlag, inFlag, clearFlag} {
		if n != "" && fl.Changed(n) {
			given = append(given, "--"+n)
		}
	}
	if len(given) > 1 {
		return nil, usagef("give only one of %s", strings.Join(given, ", "))
	}
	switch {
	case fl.Changed(atFlag):
		t, err := parseTime("--"+atFlag, at)
		return &t, err
	case fl.Changed(inFlag):
		d, err := parsePositive("--"+inFlag, in)
		t := now.Add(d)
		return &t, err
	case clearFlag != "" && fl.Changed(clearFlag) && clear:
		return &time.Time{}, nil
	}
	return nil, nil
}

// dates reads both dates: each nil when not given, zero when cleared.
func (f *dateFlags) dates(cmd *cobra.Command, now time.Time) (expires, rotateBy *time.Time, err error) {
	noExpiry, noRotate := "", ""
	if cmd.Flags().Lookup("no-expiry") != nil {
		noExpiry, noRotate = "no-expiry", "no-rotate-by"
	}
	if expires, err = date(cmd, now, "expires-at", f.expiresAt, "expires-in", f.expiresIn, noExpiry, f.noExpiry); err != nil {
		return nil, nil, err
	}
	if rotateBy, err = date(cmd, now, "rotate-by", f.rotateBy, "rotate-in", f.rotateIn, noRotate, f.noRotateBy); err != nil {
		return nil, nil, err
	}
	return expires, rotateBy, nil
}

// nullable is a date of an update: absent, cleared or set.
func nullable(t *time.Time) api.NullableTime {
	switch {
	case t == nil:
		return api.NullableTime{}
	case t.IsZero():
		return api.ClearTime()
	}
	return api.SetTime(*t)
}

// parseLabels reads --label KEY=VALUE flags (at most one value per key)
// and checks them as the server will.
func parseLabels(flag string, args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("%s #%d is malformed: want KEY=VALUE", flag, i+1)
		}
		if old, dup := out[k]; dup && old != v {
			return nil, usagef("%s %s is given twice, with different values", flag, secrets.Shorten(k, 40))
		}
		out[k] = v
	}
	if err := secrets.ValidateLabels(out); err != nil {
		return nil, usagef("%s: %s", flag, secrets.ErrorMessage(err))
	}
	return out, nil
}
