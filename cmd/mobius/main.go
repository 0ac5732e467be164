// Command mobius is the Mobius Secrets command line: a client of the HTTP
// API (secrets, keys), the local server (serve) and the operator's tools
// (admin).
//
// main wires the process (signals, environment, standard streams) to run,
// which does everything else, so every command runs in-process in tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/client"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the API answered an error, or the server or store failed
	exitUsage = 2 // the command line is wrong: flags, arguments, input files
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit status. Output goes to
// stdout; errors go to stderr as one line "error: ...".
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&cli{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}).run(args)
}

// run executes args with c's environment, streams and clock.
func (c *cli) run(args []string) int {
	c.loc = location(c.getenv)
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	if err := root.ExecuteContext(c.ctx); err != nil {
		fmt.Fprintf(c.stderr, "error: %s\n", errorLine(err))
		if !c.started || isUsage(err) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// usageError is a mistake on the command line or in its input files,
// found before any request is sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// errorLine renders err as one line; a network failure says where the CLI
// tried to connect and how to start a server there.
func errorLine(err error) string {
	var ce *client.ConnError
	if errors.As(err, &ce) {
		return ce.Error() + ` (is the server running? Start one with "mobius serve", or set --endpoint or MOBIUS_ENDPOINT)`
	}
	// The API answers a project the key cannot see exactly as a missing
	// one; the usual cause is a key of another project.
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == 404 && strings.HasPrefix(ae.Message, "project ") {
		return oneLine(err.Error()) + " (an API key sees only its own project: check --project or MOBIUS_PROJECT)"
	}
	// A deleted secret's 404 names its ID in the trash; say the command
	// that restores it.
	if errors.As(err, &ae) && ae.Status == 404 {
		if m := trashedID.FindStringSubmatch(ae.Message); m != nil {
			return oneLine(err.Error()) + " (mobius secrets restore " + m[1] + ")"
		}
	}
	// A refusal that a flag overrides names the API's field; say the flag.
	if errors.As(err, &ae) && ae.Status == 409 {
		if flag, ok := overrides[ae.Field]; ok {
			return oneLine(strings.NewReplacer(flag[0], flag[1]).Replace(err.Error()))
		}
	}
	return oneLine(err.Error())
}

// trashedID finds the ID in the API's answer for a secret in the trash.
var trashedID = regexp.MustCompile(`it is in the trash \(secret (sec_[0-9A-HJKMNP-TV-Z]{26})\)`)

// overrides maps the field of a 409 that a flag overrides to how the API's
// message names the field, and the flag.
var overrides = map[string][2]string{
	"force":           {"pass force=true", "pass --force"},
	"replace_pending": {"set replace_pending", "pass --replace-pending"},
}

func oneLine(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}

// location is the time zone of table output: $TZ if it names one, else the
// machine's.
func location(getenv func(string) string) *time.Location {
	if tz := getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc
		}
	}
	return time.Local
}

// action marks the start of a command's own work: an error before it is
// cobra's (flags, arguments) and so a usage error.
func (c *cli) action(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c.started = true
		return f(cmd, args)
	}
}
