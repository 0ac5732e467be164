package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Markers around the generated CLI reference in README.md.
const (
	referenceStart = "<!-- cli-reference:start (generated from the command definitions by `go test ./cmd/mobius -run TestCLIReference -update`) -->"
	referenceEnd   = "<!-- cli-reference:end -->"
)

// writeReference writes a Markdown reference of every command under root,
// taken from the command definitions themselves, so it cannot drift.
func writeReference(w io.Writer, root *cobra.Command) {
	fmt.Fprintf(w, "Global flags (every command):\n\n```\n%s```\n", root.PersistentFlags().FlagUsages())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() && c != root && !c.HasAvailableSubCommands() {
			fmt.Fprintf(w, "\n#### `%s`\n\n%s\n\n```\n%s\n", c.CommandPath(), c.Short, c.UseLine())
			if fl := c.LocalFlags().FlagUsages(); fl != "" {
				fmt.Fprintf(w, "\n%s", fl)
			}
			if c.Example != "" {
				fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.Example, "\n"))
			}
			fmt.Fprintln(w, "```")
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	fmt.Fprintln(w, "\n`mobius completion bash|zsh|fish|powershell` prints a shell completion script.")
}
