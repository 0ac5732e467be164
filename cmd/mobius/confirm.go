package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mobius-secrets/mobius/pkg/client"
)

// stdinIsTerminal reports whether r is a terminal. Only then do the
// commands that cannot be undone ask before they act: scripts, pipes, CI
// and stdin from /dev/null run them as written. A reader that is not a
// file answers for itself through IsTerminal (as tests do).
func stdinIsTerminal(r io.Reader) bool {
	switch r := r.(type) {
	case interface{ IsTerminal() bool }:
		return r.IsTerminal()
	case *os.File:
		return term.IsTerminal(int(r.Fd()))
	}
	return false
}

// errAborted is the answer "no": nothing was sent.
var errAborted = errors.New("aborted; nothing was changed")

// irreversible gives cmd the --yes flag and returns the check its RunE
// calls before sending anything: at a terminal, without --yes, it asks the
// question on stderr and goes on only on "y" or "yes".
func (c *cli) irreversible(cmd *cobra.Command) func(question string) error {
	yes := cmd.Flags().BoolP("yes", "y", false, "do not ask for confirmation at a terminal")
	return func(question string) error {
		if *yes || !stdinIsTerminal(c.stdin) {
			return nil
		}
		fmt.Fprintf(c.stderr, "%s [y/N] ", question)
		// Read in the background so that Ctrl-C (which cancels c.ctx)
		// ends the wait; the process exits right after.
		answer := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(c.stdin).ReadString('\n')
			answer <- line
		}()
		select {
		case line := <-answer:
			switch strings.ToLower(strings.TrimSpace(line)) {
			case "y", "yes":
				return nil
			}
		case <-c.ctx.Done():
			fmt.Fprintln(c.stderr)
		}
		return errAborted
	}
}

// removal makes cmd, which holds the help and takes one argument, a
// command that cannot be undone: at a terminal it asks question(arg) first,
// then runs do and, unless -o json (the API answers 204), prints done(arg).
func (c *cli) removal(cmd *cobra.Command, question, done func(arg string) string, do func(cl *client.Client, arg string) error) *cobra.Command {
	confirm := c.irreversible(cmd)
	cmd.RunE = c.action(func(cmd *cobra.Command, args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		if err := confirm(question(args[0])); err != nil {
			return err
		}
		if err := do(cl, args[0]); err != nil {
			return err
		}
		if !c.json() {
			fmt.Fprintln(c.stdout, done(args[0]))
		}
		return nil
	})
	return cmd
}
