package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/client"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// The trash: deleted secrets, kept with every version until they are
// restored or purged.

func (c *cli) secretsTrash() *cobra.Command {
	return listCommand(c, &cobra.Command{
		Use:   "trash",
		Short: "List the deleted secrets in the trash",
		Long: `List the secrets in the trash, by ID, with when each was deleted and when it will
be purged for good. "mobius secrets restore ID" brings one back with every
version; "mobius secrets purge ID" erases it now.`,
		Example: "  mobius secrets trash\n  mobius secrets trash -o json",
		Args:    noArgs,
	}, lister[client.TrashPage, client.TrashedSecret]{
		field: "trash",
		noun:  "secrets in the trash",
		list: func(cl *client.Client, ctx context.Context, project, _ string, limit int, token string) (*client.TrashPage, error) {
			return cl.ListTrash(ctx, project, limit, token)
		},
		of: noOf,
		page: func(p *client.TrashPage) ([]*client.TrashedSecret, string, json.RawMessage) {
			return p.Trash, p.NextPageToken, p.Raw
		},
		raw:   func(t *client.TrashedSecret) json.RawMessage { return t.Raw },
		table: c.printTrash,
	})
}

// trashID checks an ID argument of the trash locally: the trash is keyed
// by the immutable ID, not the name, which may be taken again.
func trashID(s string) error {
	if !secrets.IsSecretID(s) {
		return usagef("%q is not a secret ID (sec_ and 26 characters): the trash is keyed by ID; mobius secrets trash lists them", secrets.Shorten(s, 40))
	}
	return nil
}

func (c *cli) secretsRestore() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "restore ID [--name N]",
		Short: "Bring a secret back from the trash",
		Long: `Bring the secret with this ID (sec_…, as "mobius secrets trash" lists it) back
from the trash with every version and state, under its own name, or under
--name, which is needed when its name was taken meanwhile. Prints the secret.`,
		Example: "  mobius secrets restore sec_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N\n  mobius secrets restore sec_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N --name openai-old",
		Args:    exactArgs("ID"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if err := trashID(args[0]); err != nil {
				return err
			}
			if cmd.Flags().Changed("name") && name == "" {
				return usagef("--name must not be empty")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			s, err := cl.RestoreSecret(c.ctx, "", args[0], name)
			if err != nil {
				return err
			}
			return c.printSecret(s)
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "restore it under this name (when its own is taken)")
	return cmd
}

func (c *cli) secretsPurge() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "purge ID [--yes]",
		Short: "Erase a secret in the trash now",
		Long: `Erase the secret with this ID (sec_…) from the trash at once, with every version:
this cannot be undone. At a terminal it asks first; --yes does not.`,
		Example: "  mobius secrets purge sec_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N --yes",
		Args:    exactArgs("ID"),
	}
	confirm := c.irreversible(cmd)
	cmd.RunE = c.action(func(cmd *cobra.Command, args []string) error {
		id := args[0]
		if err := trashID(id); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		if err := confirm(fmt.Sprintf("Purge secret %s from the trash? Its values are erased for good; this cannot be undone.", id)); err != nil {
			return err
		}
		if err := cl.PurgeTrash(c.ctx, "", id); err != nil {
			return err
		}
		if !c.json() {
			fmt.Fprintf(c.stdout, "Purged secret %s.\n", id)
		}
		return nil
	})
	return cmd
}
