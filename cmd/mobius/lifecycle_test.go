package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0d", 0, true},
		{"", 0, false},
		{"d", 0, false},
		{"7", 0, false},
		{"1.5d", 0, false},
		{"-7d", 0, false},
		{"+7d", 0, false},
		{"-1h", 0, false},
		{"7dd", 0, false},
		{"7d-1h", 0, false},
		{"7days", 0, false},
		{"1w", 0, false},
		{"100001d", 0, false},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseDuration("--x", c.in)
			if c.ok != (err == nil) || got != c.want {
				t.Fatalf("parseDuration(%q) = %v, %v; want %v (ok %t)", c.in, got, err, c.want, c.ok)
			}
			if err != nil && !isUsage(err) {
				t.Fatalf("%v is not a usage error", err)
			}
		})
	}
	for d, want := range map[time.Duration]string{0: "0s", time.Hour: "1h", 90 * time.Minute: "1h30m", 7 * 24 * time.Hour: "7d", 36 * time.Hour: "1d12h", 90 * time.Second: "1m30s"} {
		if got := days(d); got != want {
			t.Errorf("days(%v) = %q, want %q", d, got, want)
		}
	}
}

// Every new flag's mistakes are usage errors: exit 2, one line, nothing
// sent, no value echoed.
func TestRotationAndLifecycleUsageErrors(t *testing.T) {
	ts := newTestServer(t)
	vals := `{"k":"` + canary + `"}`
	create := func(extra ...string) []string {
		return append([]string{"secrets", "create", "--name", "a", "--values", vals}, extra...)
	}
	const id = "sec_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"--stage without values", []string{"secrets", "update", "a", "--stage", "pending"}, "--stage and --replace-pending apply to new values"},
		{"--replace-pending without values", []string{"secrets", "update", "a", "--replace-pending"}, "--stage and --replace-pending apply to new values"},
		{"an unknown stage", []string{"secrets", "update", "a", "--values", vals, "--stage", "later"}, `invalid --stage "later"`},
		{"a grace over 7 days", []string{"secrets", "update", "a", "--previous-grace", "8d"}, "--previous-grace must be at most 7d"},
		{"a grace in fractions of a second", []string{"secrets", "update", "a", "--previous-grace", "1500ms"}, "--previous-grace must be a whole number of seconds"},
		{"a grace in weeks", []string{"secrets", "update", "a", "--previous-grace", "1w"}, `invalid --previous-grace "1w"`},
		{"an alias time over 30 days", create("--rename-alias-ttl", "31d"), "--rename-alias-ttl must be at most 30d"},
		{"a negative alias time", create("--rename-alias-ttl", "-1h"), `invalid --rename-alias-ttl "-1h"`},
		{"an expiry span in days and a half", create("--expires-in", "1.5d"), `invalid --expires-in "1.5d"`},
		{"an expiry span of zero", create("--expires-in", "0d"), "--expires-in must be longer than 0"},
		{"an expiry time that is none", create("--expires-at", "tomorrow"), `invalid --expires-at "tomorrow": want an RFC 3339 time`},
		{"an expiry time and span", create("--expires-at", "2027-01-01T00:00:00Z", "--expires-in", "30d"), "give only one of --expires-at, --expires-in"},
		{"a rotate span that is none", create("--rotate-in", "soon"), `invalid --rotate-in "soon"`},
		{"no expiry and an expiry", []string{"secrets", "update", "a", "--no-expiry", "--expires-in", "3d"}, "give only one of --expires-in, --no-expiry"},
		{"no rotate-by and a rotate-by", []string{"secrets", "update", "a", "--no-rotate-by", "--rotate-by", "2027-01-01T00:00:00Z"}, "give only one of --rotate-by, --no-rotate-by"},
		{"a label without a value", create("--label", "env"), "--label #1 is malformed: want KEY=VALUE"},
		{"a label with a bad key", create("--label", "env=prod", "--label", "bad key=x"), `--label: label key "bad key" must be`},
		{"a label twice", create("--label", "env=prod", "--label", "env=dev"), "--label env is given twice"},
		{"labels and no labels", []string{"secrets", "update", "a", "--label", "env=prod", "--clear-labels"}, "give either --label or --clear-labels, not both"},
		{"a list expiring whenever", []string{"secrets", "list", "--expiring", "soon"}, `invalid --expiring "soon"`},
		{"a list rotate-due in the past", []string{"secrets", "list", "--rotate-due", "-7d"}, `invalid --rotate-due "-7d"`},
		{"a list label filter without a value", []string{"secrets", "list", "--label", "env"}, "--label #1 is malformed"},
		{"a list time that is not RFC 3339", []string{"secrets", "list", "--expiring", "2027-01-01 00:00"}, `invalid --expiring "2027-01-01 00:00": want an RFC 3339 time`},
		{"consumers since whenever", []string{"secrets", "consumers", "a", "--since", "yesterday"}, `invalid --since "yesterday"`},
		{"promote a version that is none", []string{"secrets", "promote-version", "a", "x"}, `invalid version "x"`},
		{"promote without a version", []string{"secrets", "promote", "a"}, "takes 2 argument(s) (SECRET VERSION), got 1"},
		{"delete an alias that is no name", []string{"secrets", "delete-alias", "a", "bad.name"}, `invalid OLDNAME "bad.name"`},
		{"restore by name", []string{"secrets", "restore", "openai"}, `"openai" is not a secret ID`},
		{"restore under an empty name", []string{"secrets", "restore", id, "--name", ""}, "--name must not be empty"},
		{"purge by name", []string{"secrets", "purge", "openai", "--yes"}, `"openai" is not a secret ID`},
		{"trash with an argument", []string{"secrets", "trash", "x"}, "takes no arguments"},
		{"events after a number", []string{"events", "--after", "42"}, `invalid --after "42"`},
		{"events with a negative limit", []string{"events", "--limit", "-1"}, "--limit must be 1 or more"},
		{"events with an argument", []string{"events", "now"}, "takes no arguments"},
		{"delete --purge without a secret", []string{"secrets", "delete", "--purge"}, "takes 1 argument(s)"},
		{"--force where nothing is refused", []string{"secrets", "enable-version", "a", "1", "--force"}, "unknown flag: --force"},
		{"--force on a bad version", []string{"secrets", "destroy-version", "a", "0", "--force", "--yes"}, `invalid version "0"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.requests.Load()
			r := ts.run(t, tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.want)
			}
			if !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one error line: %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if n := ts.requests.Load() - before; n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

// getJSON runs a command with -o json and decodes its output into v.
func getJSON(t *testing.T, ts *testServer, v any, args ...string) {
	t.Helper()
	out := ts.mustRun(t, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("mobius %v -o json: %v\n%s", args, err, out)
	}
}

func TestLabelsAndDates(t *testing.T) {
	ts := newTestServer(t)
	now := ts.Clock.Now()
	ts.mustRun(t, "secrets", "create", "--name", "db", "--values", `{"password":"`+canary+`"}`,
		"--label", "env=prod", "--label", "team=pay", "--expires-in", "30d", "--rotate-in", "1d12h")
	var s api.Secret
	getJSON(t, ts, &s, "secrets", "get", "db")
	if len(s.Labels) != 2 || s.Labels["env"] != "prod" || s.Labels["team"] != "pay" {
		t.Errorf("labels %v", s.Labels)
	}
	if s.ExpiresAt == nil || !s.ExpiresAt.Equal(now.Add(30*24*time.Hour)) || s.RotateBy == nil || !s.RotateBy.Equal(now.Add(36*time.Hour)) {
		t.Errorf("dates %v, %v; want 30 days and 36 hours after %v", s.ExpiresAt, s.RotateBy, now)
	}
	if out := ts.mustRun(t, "secrets", "get", "db"); !strings.Contains(out, "Labels:           env=prod,team=pay") || !strings.Contains(out, "Expires:          2026-12-28 14:03") {
		t.Errorf("get:\n%s", out)
	}

	steps := []struct {
		name  string
		flags []string
		check func(s api.Secret) bool
	}{
		{"--label replaces every label", []string{"--label", "env=dev"}, func(s api.Secret) bool { return len(s.Labels) == 1 && s.Labels["env"] == "dev" }},
		{"--clear-labels removes them", []string{"--clear-labels"}, func(s api.Secret) bool { return s.Labels != nil && len(s.Labels) == 0 }},
		{"--expires-at sets the time given", []string{"--expires-at", "2027-03-01T12:00:00+01:00"}, func(s api.Secret) bool {
			return s.ExpiresAt != nil && s.ExpiresAt.Equal(time.Date(2027, 3, 1, 11, 0, 0, 0, time.UTC)) && s.RotateBy != nil
		}},
		{"--no-expiry clears it, and only it", []string{"--no-expiry"}, func(s api.Secret) bool { return s.ExpiresAt == nil && s.RotateBy != nil }},
		{"--rotate-by sets the time given", []string{"--rotate-by", "2027-01-01T00:00:00Z"}, func(s api.Secret) bool {
			return s.RotateBy != nil && s.RotateBy.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
		}},
		{"--no-rotate-by clears it", []string{"--no-rotate-by"}, func(s api.Secret) bool { return s.RotateBy == nil }},
		{"--previous-grace and --rename-alias-ttl set the settings", []string{"--previous-grace", "1h", "--rename-alias-ttl", "0"}, func(s api.Secret) bool {
			return s.PreviousGraceSeconds == 3600 && s.RenameAliasSeconds == 0
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var s api.Secret
			getJSON(t, ts, &s, append([]string{"secrets", "update", "db"}, st.flags...)...)
			if !st.check(s) {
				t.Errorf("after update %v: %+v", st.flags, s)
			}
			var again api.Secret
			getJSON(t, ts, &again, "secrets", "get", "db")
			if !st.check(again) {
				t.Errorf("get after update %v: %+v", st.flags, again)
			}
		})
	}
	// No version was written by any of it.
	var v api.VersionList
	getJSON(t, ts, &v, "secrets", "list-versions", "db")
	if len(v.Versions) != 1 {
		t.Errorf("%d versions, want 1", len(v.Versions))
	}
}

func TestListFilters(t *testing.T) {
	ts := newTestServer(t)
	now := ts.Clock.Now()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, s := range []struct {
		name  string
		flags []string
	}{
		{"a-prod-soon", []string{"--label", "env=prod", "--expires-at", at(3 * 24 * time.Hour)}},
		{"b-dev-soon", []string{"--label", "env=dev", "--expires-at", at(5 * 24 * time.Hour), "--rotate-by", at(24 * time.Hour)}},
		{"c-prod-late", []string{"--label", "env=prod", "--label", "team=pay", "--expires-at", at(60 * 24 * time.Hour), "--rotate-by", at(20 * 24 * time.Hour)}},
		{"d-none", nil},
		{"e-prod", []string{"--label", "env=prod"}},
	} {
		ts.mustRun(t, append([]string{"secrets", "create", "--name", s.name, "--values", `{"k":"` + canary + `"}`}, s.flags...)...)
	}
	for _, c := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"a label", []string{"--label", "env=prod"}, []string{"a-prod-soon", "c-prod-late", "e-prod"}},
		{"two labels", []string{"--label", "env=prod", "--label", "team=pay"}, []string{"c-prod-late"}},
		{"expiring in a week", []string{"--expiring", "7d"}, []string{"a-prod-soon", "b-dev-soon"}},
		{"expiring before a time", []string{"--expiring", at(4 * 24 * time.Hour)}, []string{"a-prod-soon"}},
		{"rotation due in 30 days", []string{"--rotate-due", "30d"}, []string{"b-dev-soon", "c-prod-late"}},
		{"a label and a date", []string{"--label", "env=prod", "--expiring", "90d"}, []string{"a-prod-soon", "c-prod-late"}},
		{"a prefix and a label", []string{"--prefix", "c", "--label", "env=prod"}, []string{"c-prod-late"}},
		{"nothing matches", []string{"--label", "env=qa"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			// One secret a page: the filtered pages are short or empty,
			// and every one is read.
			var page api.SecretList
			getJSON(t, ts, &page, append([]string{"secrets", "list", "--page-size", "1"}, c.flags...)...)
			var got []string
			for _, s := range page.Secrets {
				got = append(got, s.Name)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") || page.NextPageToken != "" {
				t.Errorf("names %v, want %v (next %q)", got, c.want, page.NextPageToken)
			}
			out := ts.mustRun(t, append([]string{"secrets", "list", "--page-size", "2"}, c.flags...)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(c.want)+1 || !strings.Contains(lines[0], "LABELS") || !strings.Contains(lines[0], "EXPIRES") {
				t.Errorf("table:\n%s", out)
			}
		})
	}
	// The filters reach the server as the API has them.
	r := ts.run(t, "secrets", "list", "--label", "env=prod", "-o", "json")
	if want := apiGet(t, ts, "/v1/projects/default/secrets?label=env:prod"); strings.TrimSpace(r.stdout) != strings.TrimSpace(want) {
		t.Errorf("list --label -o json:\n%s\nthe API:\n%s", r.stdout, want)
	}
}

func TestTrashRestoreAndPurge(t *testing.T) {
	ts := newTestServer(t)
	ts.mustRun(t, "secrets", "create", "--name", "db", "--values", `{"password":"`+canary+`"}`, "--label", "env=prod")
	ts.mustRun(t, "secrets", "update", "db", "--values", `{"password":"`+canary+`-2"}`)
	var s api.Secret
	getJSON(t, ts, &s, "secrets", "get", "db")
	if out := ts.mustRun(t, "secrets", "trash"); strings.Contains(out, s.ID) {
		t.Fatalf("the trash holds it before the delete:\n%s", out)
	}
	ts.mustRun(t, "secrets", "delete", "db", "--yes")
	if r := ts.run(t, "secrets", "get", "db"); r.code != 1 || !strings.HasSuffix(r.stderr, "(mobius secrets restore "+s.ID+")\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("get after delete does not say how to restore: %q", r.stderr)
	}
	out := ts.mustRun(t, "secrets", "trash")
	if !strings.Contains(out, s.ID) || !strings.Contains(out, "db") || !strings.Contains(out, "2026-12-05 14:03") {
		t.Errorf("trash (purged 7 days on):\n%s", out)
	}
	if got, want := ts.mustRun(t, "secrets", "trash", "-o", "json"), apiGet(t, ts, "/v1/projects/default/trash"); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("trash -o json:\n%s\nthe API:\n%s", got, want)
	}
	var trash api.TrashList
	getJSON(t, ts, &trash, "secrets", "trash")
	if len(trash.Trash) != 1 || trash.Trash[0].Secret.ID != s.ID {
		t.Fatalf("trash -o json: %+v", trash)
	}

	// The name is free at once; restoring under it then needs --name.
	ts.mustRun(t, "secrets", "create", "--name", "db", "--values", `{"password":"`+canary+`-new"}`)
	r := ts.run(t, "secrets", "restore", s.ID)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: Conflict (409)") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("restore under a taken name: exit %d, stderr %q", r.code, r.stderr)
	}
	out = ts.mustRun(t, "secrets", "restore", s.ID, "--name", "db-old")
	if !strings.Contains(out, "Name:             db-old") || !strings.Contains(out, "Current version:  2") || !strings.Contains(out, "env=prod") {
		t.Errorf("restore --name:\n%s", out)
	}
	var v api.VersionList
	getJSON(t, ts, &v, "secrets", "list-versions", "db-old")
	if len(v.Versions) != 2 || v.Versions[0].State != api.StateEnabled || v.Versions[1].State != api.StateDisabled {
		t.Errorf("restored versions: %+v", v.Versions)
	}
	if out := ts.mustRun(t, "secrets", "trash"); strings.Contains(out, s.ID) {
		t.Errorf("still in the trash after restore:\n%s", out)
	}

	// purge erases it from the trash; delete --purge skips the trash.
	ts.mustRun(t, "secrets", "delete", "db-old", "--yes")
	if out := ts.mustRun(t, "secrets", "purge", s.ID, "--yes"); out != "Purged secret "+s.ID+".\n" {
		t.Errorf("purge: %q", out)
	}
	if r := ts.run(t, "secrets", "restore", s.ID); r.code != 1 || !strings.HasPrefix(r.stderr, "error: Not Found (404)") {
		t.Errorf("restore after purge: exit %d, stderr %q", r.code, r.stderr)
	}
	var fresh api.Secret
	getJSON(t, ts, &fresh, "secrets", "get", "db")
	if out := ts.mustRun(t, "secrets", "delete", "db", "--purge", "--yes"); out != "Deleted secret \"db\" for good.\n" {
		t.Errorf("delete --purge: %q", out)
	}
	getJSON(t, ts, &trash, "secrets", "trash")
	if len(trash.Trash) != 0 {
		t.Errorf("the trash after purges: %+v", trash)
	}
	if out := ts.mustRun(t, "secrets", "delete", "--help"); !strings.Contains(out, "--purge") {
		t.Errorf("delete --help:\n%s", out)
	}
}

// At a terminal, delete --purge says that it cannot be undone, and purge
// asks too.
func TestPurgeAsksAtATerminal(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	mustRun(t, env, "secrets", "create", "--name", "db", "--values", `{"k":"`+canary+`"}`)
	r := runCLIFrom(t, env, typed("n\n"), "secrets", "delete", "db", "--purge")
	want := `Delete secret "db" for good, skipping the trash? Its values are erased at once; this cannot be undone. [y/N] error: aborted; nothing was changed` + "\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("delete --purge, answered no: exit %d, stderr %q", r.code, r.stderr)
	}
	var s api.Secret
	getJSON(t, ts, &s, "secrets", "get", "db")
	mustRun(t, env, "secrets", "delete", "db", "--yes")
	r = runCLIFrom(t, env, typed("n\n"), "secrets", "purge", s.ID)
	if r.code != 1 || !strings.Contains(r.stderr, "this cannot be undone. [y/N] error: aborted") {
		t.Fatalf("purge, answered no: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLIFrom(t, env, typed("y\n"), "secrets", "purge", s.ID)
	if r.code != 0 || r.stdout != "Purged secret "+s.ID+".\n" {
		t.Fatalf("purge, answered yes: %+v", r)
	}
}

// The feed, listed and followed.
func TestEvents(t *testing.T) {
	ts := newTestServer(t)
	ts.mustRun(t, "secrets", "create", "--name", "db", "--values", `{"k":"`+canary+`"}`)
	ts.mustRun(t, "secrets", "update", "db", "--values", `{"k":"`+canary+`-2"}`, "--label", "env=prod")
	ts.mustRun(t, "secrets", "update", "db", "--values", `{"k":"`+canary+`-3"}`, "--stage", "pending")
	ts.Clock.Advance(3 * time.Second) // events are served once settled
	var page api.EventList
	getJSON(t, ts, &page, "events")
	types := []string{}
	for _, ev := range page.Events {
		types = append(types, ev.Type)
	}
	// The server's own key was made first; an update that rotates and
	// relabels writes one event for each.
	if strings.Join(types, " ") != "api_key.created secret.created secret.labels_changed secret.rotated version.staged" || page.More {
		t.Fatalf("events %v (more %t)", types, page.More)
	}
	if got, want := ts.mustRun(t, "events", "-o", "json"), apiGet(t, ts, "/v1/projects/default/events"); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("events -o json:\n%s\nthe API:\n%s", got, want)
	}
	out := ts.mustRun(t, "events")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "AT ") || !strings.Contains(lines[5], "version.staged") || !strings.Contains(lines[5], "PENDING") ||
		!strings.Contains(lines[2], "db") || !strings.Contains(lines[1], "api_key.created") {
		t.Errorf("events table:\n%s", out)
	}

	t.Run("--limit pages and says how to continue", func(t *testing.T) {
		r := ts.run(t, "events", "--limit", "2")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || r.stderr != "More events are ready: continue with --after "+page.Events[1].ID+"\n" {
			t.Fatalf("%+v", r)
		}
		var rest api.EventList
		getJSON(t, ts, &rest, "events", "--after", page.Events[1].ID)
		if len(rest.Events) != 3 || rest.Events[0].ID != page.Events[2].ID {
			t.Fatalf("after %s: %+v", page.Events[1].ID, rest)
		}
	})
	t.Run("--follow --limit prints one object per line and stops", func(t *testing.T) {
		r := ts.run(t, "events", "--follow", "--after", page.Events[0].ID, "--limit", "2", "-o", "json")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != 0 || len(lines) != 2 || r.stderr != "resume with --after "+page.Events[2].ID+"\n" {
			t.Fatalf("%+v", r)
		}
		for i, l := range lines {
			var ev api.Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.ID != page.Events[i+1].ID {
				t.Errorf("line %d %q: %v", i, l, err)
			}
		}
	})
	t.Run("--follow waits for new events until interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errb testsupport.SyncBuffer
		c := &cli{ctx: ctx, getenv: testEnv(t, ts.env()), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, now: ts.Clock.Now}
		done := make(chan int, 1)
		go func() { done <- c.run([]string{"events", "--follow", "--after", page.Events[4].ID}) }()
		// A change made while it follows arrives once it settles.
		ts.mustRun(t, "secrets", "promote-version", "db", "3")
		ts.Clock.Advance(3 * time.Second)
		waitFor(t, func() bool { return strings.Contains(out.String(), "version.promoted") })
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
		m := regexp.MustCompile(`(?m)^resume with --after (evt_[0-9A-Z]{26})\n$`).FindStringSubmatch(errb.String())
		if m == nil || !strings.Contains(out.String(), m[1]) || strings.Count(out.String(), "\n") != 2 {
			t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
		}
		if strings.Contains(out.String()+errb.String(), canary) {
			t.Fatal("a value in the feed's output")
		}
	})
}

// waitFor polls cond until it holds, failing the test after a long while.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("the condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every rotation step through the CLI: stage, verify, promote with a grace
// for the previous value, consumers, a refusal while a version is in use,
// then destroy; and a rename's alias, ended early.
func TestRotation(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	ts.mustRun(t, "secrets", "create", "--name", "webhook", "--values", `{"signing_key":"`+canary+`"}`, "--previous-grace", "24h")
	if out := ts.mustRun(t, "secrets", "get", "webhook"); !strings.Contains(out, "Previous grace:   1d") {
		t.Errorf("get:\n%s", out)
	}

	// Stage: a PENDING version that plain references do not see.
	out := ts.mustRun(t, "secrets", "update", "webhook", "--values", `{"signing_key":"`+canary+`-2"}`, "--stage", "pending")
	if !strings.Contains(out, "Current version:  1") || !strings.Contains(out, "Pending version:  2") {
		t.Errorf("update --stage pending:\n%s", out)
	}
	if out := ts.mustRun(t, "secrets", "list"); !regexp.MustCompile(`(?m)^webhook +1 +2 +2 `).MatchString(out) {
		t.Errorf("list shows no pending version:\n%s", out)
	}
	r := ts.run(t, "secrets", "update", "webhook", "--values", `{"signing_key":"`+canary+`-3"}`)
	if r.code != 1 || !strings.Contains(r.stderr, "version 2 of secret \"webhook\" is PENDING") || !strings.Contains(r.stderr, "pass --replace-pending") || strings.Contains(r.stderr, "replace_pending") {
		t.Errorf("new values over a PENDING version: exit %d, stderr %q", r.code, r.stderr)
	}
	out = ts.mustRun(t, "secrets", "update", "webhook", "--values", `{"signing_key":"`+canary+`-3"}`, "--stage", "pending", "--replace-pending")
	if !strings.Contains(out, "Pending version:  3") {
		t.Errorf("--replace-pending:\n%s", out)
	}

	// Promote: 3 is ENABLED, 1 stays resolvable as @previous for a day.
	out = ts.mustRun(t, "secrets", "promote-version", "webhook", "3")
	if !strings.Contains(out, "Version:        3") || !strings.Contains(out, "State:          ENABLED") {
		t.Errorf("promote-version:\n%s", out)
	}
	out = ts.mustRun(t, "secrets", "get", "webhook")
	if !strings.Contains(out, "Current version:  3") || !strings.Contains(out, "Previous:         1 (resolvable as @previous until 2026-11-29 14:03)") || strings.Contains(out, "Pending version:") {
		t.Errorf("get after promote:\n%s", out)
	}

	// A loop still reads version 1.
	var g api.ResolveGrantCreated
	getJSON(t, ts, &g, "grants", "create", "--secrets", "webhook", "--run", `{"loop":"verifier","run_id":"r9"}`)
	var s api.Secret
	getJSON(t, ts, &s, "secrets", "get", "webhook")
	if err := ts.Svc.RecordResolutions(ctx, []*secrets.Resolution{{
		Project: "default", SecretID: s.ID, SecretName: "webhook", Version: 1, Keys: []string{"signing_key"},
		GrantID: g.ID, KeyID: g.KeyID, Run: g.Run, Step: json.RawMessage(`{"step":"verify"}`),
	}, {
		Project: "default", SecretID: s.ID, SecretName: "webhook", Version: 3, Keys: []string{"signing_key"},
		GrantID: g.ID, KeyID: g.KeyID, Run: g.Run, Step: json.RawMessage(`{"step":"sign"}`),
	}}); err != nil {
		t.Fatal(err)
	}
	ts.Clock.Advance(time.Minute)
	out = ts.mustRun(t, "secrets", "consumers", "webhook")
	if !regexp.MustCompile(`(?m)^1 +DISABLED +2026-11-28 14:0\d +\{"loop":"verifier","run_id":"r9"\} +\{"step":"verify"\} +1 +2026-11-28 14:03:00$`).MatchString(out) {
		t.Errorf("consumers:\n%s", out)
	}
	if got, want := ts.mustRun(t, "secrets", "consumers", "webhook", "-o", "json"), apiGet(t, ts, "/v1/projects/default/secrets/webhook/consumers"); strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("consumers -o json:\n%s\nthe API:\n%s", got, want)
	}
	var cl api.ConsumerList
	getJSON(t, ts, &cl, "secrets", "consumers", "webhook", "--since", "30s")
	if !cl.Since.Equal(ts.Clock.Now().Add(-30*time.Second)) || len(cl.Versions) != 2 || len(cl.Versions[1].Consumers) != 0 {
		t.Errorf("consumers --since 30s (before the read): %+v", cl)
	}
	getJSON(t, ts, &cl, "secrets", "consumers", "webhook", "--since", "2026-11-28T00:00:00Z")
	if len(cl.Versions) != 2 || cl.Versions[1].Version != 1 || len(cl.Versions[1].Consumers) != 1 || cl.Versions[1].Consumers[0].Count != 1 {
		t.Errorf("consumers --since a time: %+v", cl)
	}

	// Destroying the version in use is refused, naming the consumer, until
	// --force.
	r = ts.run(t, "secrets", "destroy-version", "webhook", "1", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr, "last by grant "+g.ID) || !strings.Contains(r.stderr, `"run_id":"r9"`) ||
		!strings.Contains(r.stderr, "pass --force to destroy it anyway") || strings.Contains(r.stderr, "force=true") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("destroy in use: exit %d, stderr %q", r.code, r.stderr)
	}
	r = ts.run(t, "secrets", "disable-version", "webhook", "3")
	if r.code != 1 || !strings.Contains(r.stderr, "pass --force to disable it anyway") {
		t.Errorf("disable in use: exit %d, stderr %q", r.code, r.stderr)
	}
	out = ts.mustRun(t, "secrets", "destroy-version", "webhook", "1", "--yes", "--force")
	if !strings.Contains(out, "State:          DESTROYED") {
		t.Errorf("destroy --force:\n%s", out)
	}

	// A rename leaves an alias, which delete-alias ends.
	ts.mustRun(t, "secrets", "update", "webhook", "--name", "webhook-signing")
	out = ts.mustRun(t, "secrets", "get", "webhook-signing")
	if !strings.Contains(out, "Aliases:          webhook (until 2026-12-05 14:04)") {
		t.Errorf("get after rename:\n%s", out)
	}
	r = ts.run(t, "secrets", "create", "--name", "webhook", "--values", `{"k":"`+canary+`"}`)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: Conflict (409)") {
		t.Errorf("create under an alias: exit %d, stderr %q", r.code, r.stderr)
	}
	out = ts.mustRun(t, "secrets", "delete-alias", "webhook-signing", "webhook")
	if out != `Ended alias "webhook" of secret "webhook-signing": references by it no longer resolve, and the name is free.`+"\n" {
		t.Errorf("delete-alias: %q", out)
	}
	if out := ts.mustRun(t, "secrets", "get", "webhook-signing"); strings.Contains(out, "Aliases:") {
		t.Errorf("get after delete-alias:\n%s", out)
	}
	if r := ts.run(t, "secrets", "delete-alias", "webhook-signing", "webhook"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: Not Found (404)") {
		t.Errorf("delete-alias twice: exit %d, stderr %q", r.code, r.stderr)
	}
	ts.mustRun(t, "secrets", "create", "--name", "webhook", "--values", `{"k":"`+canary+`"}`)

	// --rename-alias-ttl 0 frees an old name at once.
	ts.mustRun(t, "secrets", "create", "--name", "tmp", "--values", `{"k":"`+canary+`"}`, "--rename-alias-ttl", "0")
	ts.mustRun(t, "secrets", "update", "tmp", "--name", "tmp2")
	ts.mustRun(t, "secrets", "create", "--name", "tmp", "--values", `{"k":"`+canary+`"}`)
}
