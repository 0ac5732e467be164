package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
)

func (c *cli) keysCommand() *cobra.Command {
	cmd := c.group("keys", "Create, list and revoke the project's API keys",
		`API keys authenticate calls to the API. A key belongs to one project and holds
scopes: secrets:read (every read), secrets:write (create, update, delete, version
actions) and keys:admin (these commands). A key is shown once, when created, and
stored only as a hash.`)
	cmd.AddCommand(c.keysCreate(), c.keysList(), c.keysRevoke())
	return cmd
}

func (c *cli) keysCreate() *cobra.Command {
	var name string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "create [--name N] [--scopes S,...]",
		Short: "Create an API key (shown this once)",
		Long: `Create an API key for the project. The key is printed this once; store it now.
Without --scopes the key can only read (secrets:read).`,
		Example: `  mobius keys create --name ci --scopes secrets:read
  mobius keys create --name rotator --scopes secrets:read,secrets:write -o json`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			k, err := cl.CreateAPIKey(c.ctx, "", api.CreateAPIKeyRequest{Name: name, Scopes: scopes})
			if err != nil {
				return err
			}
			if c.json() {
				return c.printRaw(k.Raw)
			}
			t := newTable(c.stdout)
			t.row("ID:", k.ID)
			t.row("Name:", k.Name)
			t.row("Scopes:", keysCell(k.Scopes))
			t.row("Created:", c.when(k.CreatedAt))
			t.row("Key:", k.Key)
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, "Store the key now: it is not shown again.")
			return nil
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "a label for the key")
	cmd.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated: "+strings.Join([]string{api.ScopeRead, api.ScopeWrite, api.ScopeKeyAdmin, api.ScopeResolve}, ", "))
	return cmd
}

func (c *cli) keysList() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the project's API keys (never the keys themselves)",
		Example: "  mobius keys list\n  mobius keys list -o json",
		Args:    noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			l, err := cl.ListAPIKeys(c.ctx, "")
			if err != nil {
				return err
			}
			if c.json() {
				return c.printRaw(l.Raw)
			}
			return c.printKeyList(l.APIKeys)
		}),
	}
}

func (c *cli) keysRevoke() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API key",
		Long:    "Revoke an API key by its ID (key_...). The server that takes the request refuses it at once,\nevery other instance within 30 seconds. This cannot be undone. At a terminal it asks\nfirst; --yes does not.",
		Example: "  mobius keys revoke key_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N",
		Args:    exactArgs("ID"),
	}
	return c.removal(cmd,
		func(id string) string {
			return fmt.Sprintf("Revoke API key %s? Every request that uses it will be refused.", id)
		},
		func(id string) string { return fmt.Sprintf("Revoked API key %s.", id) },
		func(cl *client.Client, id string) error { return cl.RevokeAPIKey(c.ctx, "", id) })
}
