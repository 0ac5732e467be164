package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/api"
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
	// prepare, if set, reads the command's own flags before any request;
	// its error is a usage error.
	prepare func(cmd *cobra.Command) error
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

// noOf is the of of a list that takes no argument.
func noOf([]string) string { return "" }

// listCommand makes cmd, which holds the help and the Args check, a list
// command: a --page-size flag, every page fetched (a filtered page may be
// short, or empty, and still have a next one), and the items printed as a
// table or, with -o json, in the API's shape of one page.
func listCommand[P, T any](c *cli, cmd *cobra.Command, l lister[P, T]) *cobra.Command {
	var pageSize int
	cmd.RunE = c.action(func(cmd *cobra.Command, args []string) error {
		if pageSize < 0 || pageSize > secrets.MaxPageSize {
			return usagef("--page-size must be between 1 and %d", secrets.MaxPageSize)
		}
		if l.prepare != nil {
			if err := l.prepare(cmd); err != nil {
				return err
			}
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
Rotating writes a new ENABLED version and moves the previous one to DISABLED;
--stage pending writes it PENDING instead, read only by @pending references
until promote-version makes it ENABLED. Deleting moves a secret to the trash,
from which restore brings it back. Reads return metadata only: no command ever
prints a value.`)
	cmd.AddCommand(
		c.secretsCreate(), c.secretsGet(), c.secretsList(), c.secretsUpdate(),
		c.secretsListVersions(), c.secretsGetVersion(),
		c.versionAction("enable-version", "Make a version the ENABLED one",
			"The version becomes ENABLED; the previously ENABLED version becomes DISABLED (resolvable as\n@previous for the secret's previous grace).",
			"  mobius secrets enable-version openai 2", false, (*client.Client).EnableVersion),
		c.versionAction("promote-version", "Promote the PENDING version to ENABLED",
			"The PENDING version (written by update --stage pending) becomes ENABLED and the ENABLED one\nDISABLED, in one step; the old one stays resolvable as @previous for the secret's previous\ngrace. \"mobius secrets promote\" is the same command.",
			"  mobius secrets promote-version stripe-webhook 4", false, (*client.Client).PromoteVersion, "promote"),
		c.versionAction("disable-version", "Disable a version",
			"An ENABLED version becomes DISABLED; the secret then has no current version until one is\nenabled. A version resolved in the last hour is refused, naming its last consumer, unless\n--force.",
			"  mobius secrets disable-version openai 3\n  mobius secrets disable-version openai 3 --force", true, (*client.Client).DisableVersion),
		c.secretsDestroyVersion(),
		c.secretsDelete(), c.secretsTrash(), c.secretsRestore(), c.secretsPurge(),
		c.secretsResolutions(), c.secretsConsumers(), c.secretsDeleteAlias(), c.secretsDigest(),
	)
	return cmd
}

// rotationFlags are a secret's rotation settings as flags of create and
// update.
type rotationFlags struct{ grace, aliasTTL string }

func (f *rotationFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.grace, "previous-grace", "", "how long a replaced version stays resolvable as @previous: 0 (the default) to 7d, such as 1h")
	cmd.Flags().StringVar(&f.aliasTTL, "rename-alias-ttl", "", "how long an old name keeps resolving after a rename: 0 (freed at once) to 30d; 7d by default")
}

// seconds reads the settings given: nil for those that are not.
func (f *rotationFlags) seconds(cmd *cobra.Command) (grace, aliasTTL *int64, err error) {
	if cmd.Flags().Changed("previous-grace") {
		if grace, err = parseSeconds("--previous-grace", f.grace, secrets.MaxPreviousGrace); err != nil {
			return nil, nil, err
		}
	}
	if cmd.Flags().Changed("rename-alias-ttl") {
		if aliasTTL, err = parseSeconds("--rename-alias-ttl", f.aliasTTL, secrets.MaxAliasTTL); err != nil {
			return nil, nil, err
		}
	}
	return grace, aliasTTL, nil
}

func (c *cli) secretsCreate() *cobra.Command {
	var name, description string
	var labels []string
	var vals valuesInput
	var dates dateFlags
	var rot rotationFlags
	cmd := &cobra.Command{
		Use:   "create --name NAME (--file FILE [--var K=V]... | --values JSON) [--label K=V]... [flags]",
		Short: "Create a secret with its first version",
		Long: `Create a secret whose version 1 holds the values given, ENABLED.

--label KEY=VALUE (repeatable) labels it, to filter lists by. --expires-at or
--expires-in sets when references to it stop resolving (nothing is deleted);
--rotate-by or --rotate-in when it should be rotated. Both send reminder
events 7 days and 1 day before. --previous-grace keeps a replaced version
resolvable as @previous after each rotation; --rename-alias-ttl is how long an
old name keeps resolving after a rename (7d unless given). Durations are Go
durations (90m, 12h) or days (7d, 1d12h); times are RFC 3339.

` + valuesHelp,
		Example: `  mobius secrets create --name openai --description "OpenAI key" --file creds.json
  mobius secrets create --name db --file db.json --var ENV=prod --label env=prod --label team=pay
  mobius secrets create --name stripe-webhook --file whsec.json --previous-grace 24h --rotate-in 90d
  mobius secrets create --name openai --values '{"api_key":"sk-..."}'`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usagef("--name is required")
			}
			in := api.CreateSecretRequest{Name: name, Description: description}
			var err error
			if len(labels) > 0 {
				if in.Labels, err = parseLabels("--label", labels); err != nil {
					return err
				}
			}
			if in.ExpiresAt, in.RotateBy, err = dates.dates(cmd, c.now()); err != nil {
				return err
			}
			if in.PreviousGraceSeconds, in.RenameAliasSeconds, err = rot.seconds(cmd); err != nil {
				return err
			}
			if in.Values, err = vals.load(cmd, c.stdin); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			s, err := cl.CreateSecret(c.ctx, "", in)
			if err != nil {
				return err
			}
			return c.printSecret(s)
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "the secret's name (required)")
	cmd.Flags().StringVar(&description, "description", "", "what the secret is for")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "a label KEY=VALUE (repeatable)")
	dates.add(cmd, false)
	rot.add(cmd)
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
	var prefix, expiring, rotateDue string
	var labels []string
	q := client.ListSecretsQuery{}
	cmd := listCommand(c, &cobra.Command{
		Use:   "list [--prefix P] [--label K=V]... [--expiring D|T] [--rotate-due D|T]",
		Short: "List the project's secrets by name",
		Long: `List the project's secrets in name order, fetching every page. --label KEY=VALUE
(repeatable; all must match) keeps the secrets with those labels; --expiring
keeps those whose expiry date is set and before a time, --rotate-due those
whose rotate-by date is: a span from now (7d) or an RFC 3339 time.`,
		Example: `  mobius secrets list
  mobius secrets list --prefix openai -o json
  mobius secrets list --label env=prod --label team=pay
  mobius secrets list --expiring 7d
  mobius secrets list --rotate-due 2026-07-01T00:00:00Z`,
		Args: noArgs,
	}, lister[client.SecretPage, client.Secret]{
		field: "secrets",
		noun:  "secrets",
		prepare: func(cmd *cobra.Command) error {
			q = client.ListSecretsQuery{Prefix: prefix}
			var err error
			if len(labels) > 0 {
				if q.Labels, err = parseLabels("--label", labels); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("expiring") {
				if q.ExpiringBefore, err = parseUntil("--expiring", expiring, c.now()); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("rotate-due") {
				if q.RotateBefore, err = parseUntil("--rotate-due", rotateDue, c.now()); err != nil {
					return err
				}
			}
			return nil
		},
		list: func(cl *client.Client, ctx context.Context, project, _ string, limit int, token string) (*client.SecretPage, error) {
			page := q
			page.Limit, page.PageToken = limit, token
			return cl.ListSecretsWith(ctx, project, page)
		},
		of: noOf,
		page: func(p *client.SecretPage) ([]*client.Secret, string, json.RawMessage) {
			return p.Secrets, p.NextPageToken, p.Raw
		},
		raw:   func(s *client.Secret) json.RawMessage { return s.Raw },
		table: c.printSecretList,
	})
	cmd.Flags().StringVar(&prefix, "prefix", "", "only secrets whose name starts with this")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only secrets with this label, KEY=VALUE (repeatable: all must match)")
	cmd.Flags().StringVar(&expiring, "expiring", "", "only secrets that expire before this: a span from now (7d) or an RFC 3339 time")
	cmd.Flags().StringVar(&rotateDue, "rotate-due", "", "only secrets to rotate before this: a span from now (30d) or an RFC 3339 time")
	return cmd
}

func (c *cli) secretsUpdate() *cobra.Command {
	var name, description, stage string
	var labels []string
	var clearLabels, replacePending bool
	var vals valuesInput
	var dates dateFlags
	var rot rotationFlags
	cmd := &cobra.Command{
		Use:   "update SECRET [--name N] [--description D] [--file FILE [--var K=V]... | --values JSON] [--stage pending] [--label K=V]... [flags]",
		Short: "Rename, re-describe, relabel, re-date or rotate a secret",
		Long: `Update a secret. --name renames it (the old name keeps resolving as an alias for
the secret's --rename-alias-ttl), --description replaces its description, and
new values (--file or --values) write a new ENABLED version while the previous
ENABLED version moves to DISABLED. With --stage pending the new version is
PENDING instead: plain references keep reading the ENABLED one, @pending
references read it, and promote-version makes it ENABLED. While a version is
PENDING, new values are refused unless --replace-pending.

--label KEY=VALUE (repeatable) replaces all of the secret's labels with those
given; --clear-labels removes them all. --expires-at, --expires-in or
--no-expiry set or clear the expiry date; --rotate-by, --rotate-in or
--no-rotate-by the rotate-by date. --previous-grace and --rename-alias-ttl
change the rotation settings (0 ends each at once).

` + valuesHelp,
		Example: `  mobius secrets update openai --file new-creds.json --var ENV=prod
  mobius secrets update stripe-webhook --file whsec-new.json --stage pending
  mobius secrets update openai --name openai-prod --description "Production key"
  mobius secrets update openai --label env=prod --label team=ml --rotate-in 90d
  mobius secrets update openai --clear-labels --no-expiry --previous-grace 1h`,
		Args: exactArgs("SECRET"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var in api.UpdateSecretRequest
			if fl.Changed("name") {
				in.Name = &name
			}
			if fl.Changed("description") {
				in.Description = &description
			}
			switch {
			case len(labels) > 0 && clearLabels:
				return usagef("give either --label or --clear-labels, not both")
			case len(labels) > 0:
				l, err := parseLabels("--label", labels)
				if err != nil {
					return err
				}
				in.Labels = &l
			case clearLabels:
				in.Labels = &map[string]string{}
			}
			expires, rotateBy, err := dates.dates(cmd, c.now())
			if err != nil {
				return err
			}
			in.ExpiresAt, in.RotateBy = nullable(expires), nullable(rotateBy)
			if in.PreviousGraceSeconds, in.RenameAliasSeconds, err = rot.seconds(cmd); err != nil {
				return err
			}
			newValues := vals.given(cmd) || len(vals.vars) > 0
			if fl.Changed("stage") {
				switch strings.ToLower(stage) {
				case "pending":
					in.Stage = api.StatePending
				case "enabled":
					in.Stage = api.StateEnabled
				default:
					return usagef("invalid --stage %q: use pending (or enabled, the default)", secrets.Shorten(stage, 20))
				}
			}
			if (fl.Changed("stage") || replacePending) && !newValues {
				return usagef("--stage and --replace-pending apply to new values: give --file or --values")
			}
			in.ReplacePending = replacePending
			if newValues {
				if in.Values, err = vals.load(cmd, c.stdin); err != nil {
					return err
				}
			}
			if in.Name == nil && in.Description == nil && in.Values == nil && in.Labels == nil && in.ExpiresAt.IsZero() && in.RotateBy.IsZero() &&
				in.PreviousGraceSeconds == nil && in.RenameAliasSeconds == nil {
				return usagef("nothing to update: give --name, --description, --file or --values, --label or --clear-labels, a date, --previous-grace or --rename-alias-ttl")
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
	cmd.Flags().StringVar(&stage, "stage", "", "pending: write the new version PENDING, to verify with @pending before promote-version")
	cmd.Flags().BoolVar(&replacePending, "replace-pending", false, "let the new version replace a PENDING one (which becomes DISABLED)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "a label KEY=VALUE (repeatable); replaces all of the secret's labels")
	cmd.Flags().BoolVar(&clearLabels, "clear-labels", false, "remove every label")
	dates.add(cmd, true)
	rot.add(cmd)
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
		return usagef("invalid version %q: want a positive number or \"current\"", secrets.Shorten(s, 20))
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

// versionAction is a command SECRET VERSION that runs one version action;
// withForce gives it --force, for the actions the API refuses on a version
// in use.
func (c *cli) versionAction(use, short, long, example string, withForce bool, do versionActionFunc, aliases ...string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use + " SECRET VERSION",
		Aliases: aliases,
		Short:   short,
		Long:    long + "\nVERSION is a number or \"current\". Prints the version as it now is.",
		Example: example,
	}
	force := forceFlag(cmd, withForce)
	return c.onVersion(cmd, func(cl *client.Client, secret, version string) (*client.Version, error) {
		return do(cl, c.ctx, "", secret, version, force()...)
	})
}

// forceFlag gives cmd --force when with is true, and returns the call
// options it makes.
func forceFlag(cmd *cobra.Command, with bool) func() []client.CallOption {
	if !with {
		return func() []client.CallOption { return nil }
	}
	force := cmd.Flags().Bool("force", false, "act even if the version was resolved in the last hour")
	return func() []client.CallOption {
		if *force {
			return []client.CallOption{client.Force()}
		}
		return nil
	}
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
its metadata stays for audit. A version resolved in the last hour is refused,
naming its last consumer, unless --force. At a terminal it asks first; --yes
does not. VERSION is a number or "current". Prints the version as it now is.`,
		Example: "  mobius secrets destroy-version openai 1\n  mobius secrets destroy-version openai 1 --yes --force",
	}
	confirm := c.irreversible(cmd)
	force := forceFlag(cmd, true)
	return c.onVersion(cmd, func(cl *client.Client, secret, version string) (*client.Version, error) {
		what := "version " + version
		if version == "current" {
			what = "the current version"
		}
		if err := confirm(fmt.Sprintf("Destroy %s of secret %q? Its values are purged for good.", what, secret)); err != nil {
			return nil, err
		}
		return cl.DestroyVersion(c.ctx, "", secret, version, force()...)
	})
}

func (c *cli) secretsDelete() *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "delete SECRET [--purge]",
		Short: "Delete a secret: move it to the trash",
		Long: `Delete a secret: it moves to the trash for 7 days (the server's setting), with
every version, and its name is free at once; references to it fail. Within
those days "mobius secrets restore ID" brings it back; then it is purged for
good. --purge skips the trash: the values are erased at once, and this cannot
be undone. At a terminal it asks first; --yes does not.`,
		Example: "  mobius secrets delete openai\n  mobius secrets delete openai --yes\n  mobius secrets delete old-token --purge",
		Args:    exactArgs("SECRET"),
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "skip the trash: erase the secret and every version now (cannot be undone)")
	return c.removal(cmd,
		func(name string) string {
			if purge {
				return fmt.Sprintf("Delete secret %q for good, skipping the trash? Its values are erased at once; this cannot be undone.", name)
			}
			return fmt.Sprintf("Delete secret %q? It goes to the trash, and is purged for good when the trash's time ends.", name)
		},
		func(name string) string {
			if purge {
				return fmt.Sprintf("Deleted secret %q for good.", name)
			}
			return fmt.Sprintf("Deleted secret %q; it is in the trash until it is purged (mobius secrets trash lists it).", name)
		},
		func(cl *client.Client, name string) error {
			if purge {
				return cl.PurgeSecret(c.ctx, "", name)
			}
			return cl.DeleteSecret(c.ctx, "", name)
		})
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
