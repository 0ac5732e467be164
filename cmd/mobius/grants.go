package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func (c *cli) grantsCommand() *cobra.Command {
	cmd := c.group("grants", "Mint, list and revoke resolve grants",
		`A resolve grant authorizes one run of a loop to resolve references to the
secrets it names, and nothing else, for a short time (an hour by default, at
most 24 hours). The runner mints one per run with an API key that holds the
secrets:resolve scope and passes it with every resolve call; the audit of each
resolution records the grant and its run. A grant is shown once, when minted.
Revoking the API key that minted a grant revokes the grant too.`)
	cmd.AddCommand(c.grantsCreate(), c.grantsList(), c.grantsRevoke())
	return cmd
}

func (c *cli) grantsCreate() *cobra.Command {
	var secretNames []string
	var runJSON string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --secrets NAME,... [--run JSON] [--ttl 1h]",
		Short: "Mint a resolve grant for one run (shown this once)",
		Long: `Mint a grant that lets one run resolve the secrets named by --secrets (names
or IDs; the grant binds their IDs, so a rename keeps it and a new secret that
takes an old name is not covered). --run is a JSON object of at most 4 KiB,
the run's identifiers, carried inside the grant and recorded with every
resolution it authorizes. The grant is printed this once.`,
		Example: `  mobius grants create --secrets openai,db --run '{"loop":"summarizer","run_id":"r1"}'
  GRANT=$(mobius grants create --secrets openai --ttl 10m -o json | jq -r .grant)`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if len(secretNames) == 0 {
				return usagef("give the secrets the grant covers with --secrets NAME,...")
			}
			in := api.CreateResolveGrantRequest{Secrets: secretNames}
			if cmd.Flags().Changed("run") {
				run, err := jsonObjectFlag("--run", runJSON)
				if err != nil {
					return err
				}
				in.Run = run
			}
			if cmd.Flags().Changed("ttl") {
				if ttl < time.Second || ttl%time.Second != 0 {
					return usagef("--ttl must be a whole number of seconds, at least 1s (e.g. 10m, 1h)")
				}
				secs := int64(ttl / time.Second)
				in.TTLSeconds = &secs
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			g, err := cl.CreateResolveGrant(c.ctx, "", in)
			if err != nil {
				return err
			}
			if c.json() {
				return c.printRaw(g.Raw)
			}
			t := newTable(c.stdout)
			t.row("ID:", g.ID)
			t.row("Secrets:", grantSecretsCell(g.Secrets))
			t.row("Run:", runCell(g.Run))
			t.row("Expires:", c.when(g.ExpiresAt))
			t.row("Grant:", g.Grant)
			return t.flush()
		}),
	}
	cmd.Flags().StringSliceVar(&secretNames, "secrets", nil, "the secrets the grant covers, by name or ID, comma-separated")
	cmd.Flags().StringVar(&runJSON, "run", "", "the run's identifiers, a JSON object")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the grant lasts (default 1h, at most 24h)")
	return cmd
}

func grantSecretsCell(list []api.ResolveGrantSecret) string {
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}

func (c *cli) grantsList() *cobra.Command {
	return listCommand(c, &cobra.Command{
		Use:     "list",
		Short:   "List the project's live resolve grants (never the grants themselves)",
		Long:    "List the grants that have neither expired nor been revoked, oldest first, fetching every page.",
		Example: "  mobius grants list\n  mobius grants list -o json",
		Args:    noArgs,
	}, lister[client.ResolveGrantPage, client.ResolveGrant]{
		field: "grants",
		noun:  "grants",
		list: func(cl *client.Client, ctx context.Context, project, _ string, limit int, token string) (*client.ResolveGrantPage, error) {
			return cl.ListResolveGrants(ctx, project, limit, token)
		},
		of: func([]string) string { return "" },
		page: func(p *client.ResolveGrantPage) ([]*client.ResolveGrant, string, json.RawMessage) {
			return p.Grants, p.NextPageToken, p.Raw
		},
		raw: func(g *client.ResolveGrant) json.RawMessage { return g.Raw },
		table: func(list []*client.ResolveGrant) error {
			t := newTable(c.stdout, "ID", "SECRETS", "RUN", "KEY", "EXPIRES")
			for _, g := range list {
				t.row(g.ID, secrets.Shorten(grantSecretsCell(g.Secrets), 60), runCell(g.Run), g.KeyID, c.when(g.ExpiresAt))
			}
			return t.flush()
		},
	})
}

func (c *cli) grantsRevoke() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a resolve grant",
		Long:    "Revoke a grant by its ID (grt_...): resolve refuses it at once on the server that takes\nthe request, everywhere within 30 seconds. At a terminal it asks first; --yes does not.",
		Example: "  mobius grants revoke grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8",
		Args:    exactArgs("ID"),
	}
	return c.removal(cmd,
		func(id string) string {
			return fmt.Sprintf("Revoke resolve grant %s? Its run can no longer resolve secrets.", id)
		},
		func(id string) string { return fmt.Sprintf("Revoked resolve grant %s.", id) },
		func(cl *client.Client, id string) error { return cl.RevokeResolveGrant(c.ctx, "", id) })
}
