package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/client"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// maxPages stops a list that never ends (a server handing out the same
// token again).
const maxPages = 100000

// collect fetches every page of a list.
func collect[T any](fetch func(token string) ([]*T, string, json.RawMessage, error), raw func(*T) json.RawMessage) (items []*T, pages, rawItems []json.RawMessage, err error) {
	token := ""
	seen := map[string]bool{}
	for range maxPages {
		list, next, page, err := fetch(token)
		if err != nil {
			return nil, nil, nil, err
		}
		items = append(items, list...)
		pages = append(pages, page)
		for _, it := range list {
			rawItems = append(rawItems, raw(it))
		}
		if next == "" {
			return items, pages, rawItems, nil
		}
		if seen[next] {
			return nil, nil, nil, fmt.Errorf("the server repeated a page token; the list does not end")
		}
		seen[next] = true
		token = next
	}
	return nil, nil, nil, fmt.Errorf("the list has more than %d pages", maxPages)
}

// lister is what one list command says of its pages (P) and their items
// (T); listCommand does the rest.
type lister[P, T any] struct {
	// field is the JSON field of a page that holds the items.
	field string
	// noun names the items in the --page-size help: "secrets", "records".
	noun string
	// list is the client's method that fetches one page, of what the
	// command's arguments and flags name (the of below).
	list func(cl *client.Client, ctx context.Context, project, of string, limit int, token string) (*P, error)
	// of is list's string argument: a secret, or a name prefix.
	of func(args []string) string
	// page splits a page into its items, the next token and its JSON.
	page func(*P) ([]*T, string, json.RawMessage)
	// raw is an item's JSON as the server sent it.
	raw func(*T) json.RawMessage
	// table prints the items for a person.
	table func([]*T) error
}

// firstArg gives the list of one secret's records its SECRET argument.
func firstArg(args []string) string { return args[0] }

// listCommand makes cmd, which holds the help and the Args check, a list
// command: a --page-size flag, every page fetched, and the items printed as
// a table or, with -o json, in the API's shape of one page.
func listCommand[P, T any](c *cli, cmd *cobra.Command, l lister[P, T]) *cobra.Command {
	var pageSize int
	cmd.RunE = c.action(func(cmd *cobra.Command, args []string) error {
		if pageSize < 0 || pageSize > secrets.MaxPageSize {
			return usagef("--page-size must be between 1 and %d", secrets.MaxPageSize)
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		items, pages, raws, err := collect(func(tok string) ([]*T, string, json.RawMessage, error) {
			p, err := l.list(cl, c.ctx, "", l.of(args), pageSize, tok)
			if err != nil {
				return nil, "", nil, err
			}
			items, next, raw := l.page(p)
			return items, next, raw, nil
		}, l.raw)
		if err != nil {
			return err
		}
		if c.json() {
			return c.printPages(l.field, pages, raws)
		}
		if len(items) == 0 { // on stderr: stdout stays the (empty) table
			fmt.Fprintf(c.stderr, "No %s.\n", l.noun)
		}
		return l.table(items)
	})
	cmd.Flags().IntVar(&pageSize, "page-size", 0, l.noun+" per request (every page is fetched); the server's default if 0")
	return cmd
}

func (c *cli) secretsCommand() *cobra.Command {
	cmd := c.group("secrets", "Create, read, rotate and audit secrets",
		`A secret is a named slot; each version is one frozen set of string values.
Rotating writes a new ENABLED version and moves the previous one to DISABLED.
Reads return metadata only: no command ever prints a value.`)
	cmd.AddCommand(
		c.secretsCreate(), c.secretsGet(), c.secretsList(), c.secretsUpdate(),
		c.secretsListVersions(), c.secretsGetVersion(),
		c.versionAction("enable-version", "Make a version the ENABLED one",
			"The version becomes ENABLED; the previously ENABLED version becomes DISABLED.",
			"  mobius secrets enable-version openai 2", (*client.Client).EnableVersion),
		c.versionAction("disable-version", "Disable a version",
			"An ENABLED version becomes DISABLED; the secret then has no current version until one is enabled.",
			"  mobius secrets disable-version openai 3", (*client.Client).DisableVersion),
		c.secretsDestroyVersion(),
		c.secretsDelete(), c.secretsResolutions(), c.secretsDigest(),
	)
	return cmd
}

func (c *cli) secretsCreate() *cobra.Command {
	var name, description string
	var vals valuesInput
	cmd := &cobra.Command{
		Use:   "create --name NAME (--file FILE [--var K=V]... | --values JSON)",
		Short: "Create a secret with its first version",
		Long:  "Create a secret whose version 1 holds the values given, ENABLED.\n\n" + valuesHelp,
		Example: `  mobius secrets create --name openai --description "OpenAI key" --file creds.json
  mobius secrets create --name db --file db.json --var ENV=prod
  mobius secrets create --name openai --values '{"api_key":"sk-..."}'`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usagef("--name is required")
			}
			values, err := vals.load(cmd, c.stdin)
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			s, err := cl.CreateSecret(c.ctx, "", client.CreateSecretInput{Name: name, Description: description, Values: values})
			if err != nil {
				return err
			}
			return c.printSecret(s)
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "the secret's name (required)")
	cmd.Flags().StringVar(&description, "description", "", "what the secret is for")
	vals.addFlags(cmd)
	return cmd
}

func (c *cli) secretsGet() *cobra.Command {
	return &cobra.Command{
		Use:     "get SECRET",
		Short:   "Show a secret's metadata (never its values)",
		Long:    "Show a secret's metadata by name or ID: current and latest version, dates. Values are never shown.",
		Example: "  mobius secrets get openai\n  mobius secrets get openai -o json",
		Args:    exactArgs("SECRET"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			s, err := cl.GetSecret(c.ctx, "", args[0])
			if err != nil {
				return err
			}
			return c.printSecret(s)
		}),
	}
}

func (c *cli) secretsList() *cobra.Command {
	var prefix string
	cmd := listCommand(c, &cobra.Command{
		Use:     "list [--prefix P]",
		Short:   "List the project's secrets by name",
		Long:    "List the project's secrets in name order, fetching every page.",
		Example: "  mobius secrets list\n  mobius secrets list --prefix openai -o json",
		Args:    noArgs,
	}, lister[client.SecretPage, client.Secret]{
		field: "secrets",
		noun:  "secrets",
		list:  (*client.Client).ListSecrets,
		of:    func([]string) string { return prefix },
		page: func(p *client.SecretPage) ([]*client.Secret, string, json.RawMessage) {
			return p.Secrets, p.NextPageToken, p.Raw
		},
		raw:   func(s *client.Secret) json.RawMessage { return s.Raw },
		table: c.printSecretList,
	})
	cmd.Flags().StringVar(&prefix, "prefix", "", "only secrets whose name starts with this")
	return cmd
}

func (c *cli) secretsUpdate() *cobra.Command {
	var name, description string
	var vals valuesInput
	cmd := &cobra.Command{
		Use:   "update SECRET [--name N] [--description D] [--file FILE [--var K=V]... | --values JSON]",
		Short: "Rename, re-describe or rotate a secret",
		Long: `Update a secret. --name renames it, --description replaces its description, and
new values (--file or --values) write a new ENABLED version while the previous
ENABLED version moves to DISABLED.

` + valuesHelp,
		Example: `  mobius secrets update openai --file new-creds.json --var ENV=prod
  mobius secrets update openai --values '{"api_key":"sk-new-..."}'
  mobius secrets update openai --name openai-prod --description "Production key"`,
		Args: exactArgs("SECRET"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			var in client.UpdateSecretInput
			if cmd.Flags().Changed("name") {
				in.Name = &name
			}
			if cmd.Flags().Changed("description") {
				in.Description = &description
			}
			if vals.given(cmd) || len(vals.vars) > 0 {
				values, err := vals.load(cmd, c.stdin)
				if err != nil {
					return err
				}
				in.Values = values
			}
			if in.Name == nil && in.Description == nil && in.Values == nil {
				return usagef("nothing to update: give --name, --description, --file or --values")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			s, err := cl.UpdateSecret(c.ctx, "", args[0], in)
			if err != nil {
				return err
			}
			return c.printSecret(s)
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "new name")
	cmd.Flags().StringVar(&description, "description", "", "new description (\"\" clears it)")
	vals.addFlags(cmd)
	return cmd
}

func (c *cli) secretsListVersions() *cobra.Command {
	return listCommand(c, &cobra.Command{
		Use:     "list-versions SECRET",
		Short:   "List a secret's versions, newest first",
		Long:    "List every version of a secret, newest first, with its state, the start of its SHA-256 and its keys:\nthe rotation history.",
		Example: "  mobius secrets list-versions openai\n  mobius secrets list-versions openai -o json",
		Args:    exactArgs("SECRET"),
	}, lister[client.VersionPage, client.Version]{
		field: "versions",
		noun:  "versions",
		list:  (*client.Client).ListVersions,
		of:    firstArg,
		page: func(p *client.VersionPage) ([]*client.Version, string, json.RawMessage) {
			return p.Versions, p.NextPageToken, p.Raw
		},
		raw:   func(v *client.Version) json.RawMessage { return v.Raw },
		table: c.printVersionList,
	})
}

// versionArg checks a version argument locally: a positive number or
// "current".
func versionArg(s string) error {
	if _, err := secrets.ParseVersionRef(s); err != nil {
		return usagef("invalid version %q: want a positive number or \"current\"", shorten(s, 20))
	}
	return nil
}

func (c *cli) secretsGetVersion() *cobra.Command {
	return c.onVersion(&cobra.Command{
		Use:     "get-version SECRET VERSION",
		Short:   "Show one version's metadata (never its values)",
		Long:    "Show one version: its state, full SHA-256 and keys. VERSION is a number or \"current\".",
		Example: "  mobius secrets get-version openai 3\n  mobius secrets get-version openai current -o json",
	}, func(cl *client.Client, secret, version string) (*client.Version, error) {
		return cl.GetVersion(c.ctx, "", secret, version)
	})
}

type versionActionFunc func(cl *client.Client, ctx context.Context, project, secret, version string, opts ...client.CallOption) (*client.Version, error)

func (c *cli) versionAction(use, short, long, example string, do versionActionFunc) *cobra.Command {
	return c.onVersion(&cobra.Command{
		Use:     use + " SECRET VERSION",
		Short:   short,
		Long:    long + "\nVERSION is a number or \"current\". Prints the version as it now is.",
		Example: example,
	}, func(cl *client.Client, secret, version string) (*client.Version, error) {
		return do(cl, c.ctx, "", secret, version)
	})
}

// onVersion makes cmd, which holds the help, a command on the
// arguments SECRET VERSION that prints the version do returns.
func (c *cli) onVersion(cmd *cobra.Command, do func(cl *client.Client, secret, version string) (*client.Version, error)) *cobra.Command {
	cmd.Args = exactArgs("SECRET", "VERSION")
	cmd.RunE = c.action(func(cmd *cobra.Command, args []string) error {
		if err := versionArg(args[1]); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		v, err := do(cl, args[0], args[1])
		if err != nil {
			return err
		}
		return c.printVersion(v)
	})
	return cmd
}

// secretsDestroyVersion is the one version action that cannot be undone,
// so at a terminal it asks first.
func (c *cli) secretsDestroyVersion() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "destroy-version SECRET VERSION",
		Short: "Purge a version's values for good",
		Long: `The version's ciphertext is purged and it becomes DESTROYED. This cannot be undone;
its metadata stays for audit. At a terminal it asks first; --yes does not.
VERSION is a number or "current". Prints the version as it now is.`,
		Example: "  mobius secrets destroy-version openai 1\n  mobius secrets destroy-version openai 1 --yes",
	}
	confirm := c.irreversible(cmd)
	return c.onVersion(cmd, func(cl *client.Client, secret, version string) (*client.Version, error) {
		what := "version " + version
		if version == "current" {
			what = "the current version"
		}
		if err := confirm(fmt.Sprintf("Destroy %s of secret %q? Its values are purged for good.", what, secret)); err != nil {
			return nil, err
		}
		return cl.DestroyVersion(c.ctx, "", secret, version)
	})
}

func (c *cli) secretsDelete() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete SECRET",
		Short:   "Delete a secret, destroying every version",
		Long:    "Delete a secret: every version is destroyed and the name is freed. This cannot be undone.\nAt a terminal it asks first; --yes does not.",
		Example: "  mobius secrets delete openai\n  mobius secrets delete openai --yes",
		Args:    exactArgs("SECRET"),
	}
	return c.removal(cmd,
		func(name string) string {
			return fmt.Sprintf("Delete secret %q and destroy every version? This cannot be undone.", name)
		},
		func(name string) string { return fmt.Sprintf("Deleted secret %q; every version is destroyed.", name) },
		func(cl *client.Client, name string) error { return cl.DeleteSecret(c.ctx, "", name) })
}

func (c *cli) secretsResolutions() *cobra.Command {
	return listCommand(c, &cobra.Command{
		Use:     "resolutions SECRET",
		Short:   "Show the audit of resolve calls that read a secret",
		Long:    "List every resolution of the secret by the resolve function, newest first: when, which version,\nwhich keys and the caller's run. Values are never recorded.",
		Example: "  mobius secrets resolutions openai\n  mobius secrets resolutions openai -o json",
		Args:    exactArgs("SECRET"),
	}, lister[client.ResolutionPage, client.Resolution]{
		field: "resolutions",
		noun:  "resolutions",
		list:  (*client.Client).ListResolutions,
		of:    firstArg,
		page: func(p *client.ResolutionPage) ([]*client.Resolution, string, json.RawMessage) {
			return p.Resolutions, p.NextPageToken, p.Raw
		},
		raw:   func(r *client.Resolution) json.RawMessage { return r.Raw },
		table: c.printResolutionList,
	})
}

func (c *cli) secretsDigest() *cobra.Command {
	var vals valuesInput
	cmd := &cobra.Command{
		Use:   "digest (--file FILE [--var K=V]... | --values JSON)",
		Short: "Compute the SHA-256 of values locally",
		Long: `Print the lowercase hex SHA-256 of the values' canonical JSON (RFC 8785), as the
server computes it for each version: compare it with "mobius secrets get-version"
to check which values a version holds. Nothing is sent anywhere.

` + valuesHelp,
		Example: `  mobius secrets digest --file creds.json
  mobius secrets digest --file new-creds.json --var ENV=prod`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			values, err := vals.load(cmd, c.stdin)
			if err != nil {
				return err
			}
			d := secrets.Digest(values)
			if c.json() {
				_, err = fmt.Fprintf(c.stdout, "{\"sha256\":%q}\n", d)
			} else {
				_, err = fmt.Fprintln(c.stdout, d)
			}
			return err
		}),
	}
	vals.addFlags(cmd)
	return cmd
}
