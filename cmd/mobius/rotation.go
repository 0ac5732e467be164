package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Rotation: who still reads which version, and the aliases a rename
// leaves.

func (c *cli) secretsConsumers() *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "consumers SECRET [--since 24h|T]",
		Short: "Show which runs and steps read each version, and when last",
		Long: `Show, from the resolution audit, who read each version of the secret since a time
(the last 24 hours by default): per version its state and when it was last
resolved, and per run and step (as the resolve grant names the run) how many
reads and the last one. Before destroying an old version, check that nothing
reads it any more. --since is a span back from now (24h, 7d) or an RFC 3339
time. Values are never recorded.`,
		Example: "  mobius secrets consumers stripe-webhook\n  mobius secrets consumers stripe-webhook --since 7d -o json",
		Args:    exactArgs("SECRET"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			query := ""
			if cmd.Flags().Changed("since") {
				if t, err := time.Parse(time.RFC3339, since); err == nil {
					query = t.UTC().Format(time.RFC3339)
				} else {
					d, err := parsePositive("--since", since)
					if err != nil {
						return usagef("invalid --since %q: want a span back from now such as 24h or 7d, or an RFC 3339 time", secrets.Shorten(since, 40))
					}
					// The server reads the span back from its own clock.
					query = d.String()
				}
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			list, err := cl.Consumers(c.ctx, "", args[0], query)
			if err != nil {
				return err
			}
			if c.json() {
				return c.printRaw(list.Raw)
			}
			if list.Truncated {
				fmt.Fprintln(c.stderr, "warning: the window holds more reads than the server reads at once; the oldest are left out")
			}
			if len(list.Versions) == 0 {
				fmt.Fprintf(c.stderr, "No version of %s has been resolved.\n", args[0])
			}
			return c.printConsumers(list)
		}),
	}
	cmd.Flags().StringVar(&since, "since", "", "the start of the window: a span back from now (24h, 7d) or an RFC 3339 time (default 24h)")
	return cmd
}

func (c *cli) secretsDeleteAlias() *cobra.Command {
	return &cobra.Command{
		Use:   "delete-alias SECRET OLDNAME",
		Short: "End an old name of a renamed secret now",
		Long: `After a rename the old name stays an alias for the secret's rename-alias time:
references by it still resolve, and no new secret can take it. delete-alias
ends that now: references by OLDNAME stop resolving and the name is free.
"mobius secrets get SECRET" lists the aliases; "mobius refs check" finds
references that still use one.`,
		Example: "  mobius secrets delete-alias openai-prod openai",
		Args:    exactArgs("SECRET", "OLDNAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if !secrets.ValidName(args[1]) {
				return usagef("invalid OLDNAME %q: a name is 1-128 characters of A-Z a-z 0-9 _ -, starting with a letter or digit", secrets.Shorten(args[1], 40))
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			s, err := cl.DeleteAlias(c.ctx, "", args[0], args[1])
			if err != nil {
				return err
			}
			if c.json() {
				return c.printRaw(s.Raw)
			}
			_, err = fmt.Fprintf(c.stdout, "Ended alias %q of secret %q: references by it no longer resolve, and the name is free.\n", args[1], s.Name)
			return err
		}),
	}
}
