package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/app"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

func (c *cli) adminCommand() *cobra.Command {
	cmd := c.group("admin", "Operator tools that work on the store directly",
		`Operator tools. They bypass the API and work on the store that the environment
names: the embedded store under --data (while no server holds it), or DynamoDB
and KMS with MOBIUS_STORE=dynamodb, MOBIUS_TABLE and MOBIUS_KMS_KEY_ID.

backup, restore, check and compact are for the embedded store; backup also
works while "mobius serve" runs on it.`)
	cmd.AddCommand(c.adminCreateKey(), c.adminCreateTable(),
		c.adminBackup(), c.adminRestore(), c.adminCheck(), c.adminCompact())
	return cmd
}

// storeError turns a failure to open the store into one clear line.
func storeError(err error, cfg app.Config) error {
	if errors.Is(err, bolt.ErrInUse) {
		return fmt.Errorf("the data folder %s is in use by a running mobius server: stop it first (for a project that already has a key with keys:admin, \"mobius keys create\" works while it runs)", cfg.DataDir)
	}
	return err
}

// domainError renders an error of the service like the API would; invalid
// input is a usage error.
func domainError(err error) error {
	code := secrets.ErrorCode(err)
	if code == secrets.Invalid { // checked here, not by an API: no status to name
		return usagef("%s", secrets.ErrorMessage(err))
	}
	return fmt.Errorf("%s: %s", code, secrets.ErrorMessage(err))
}

func (c *cli) adminCreateKey() *cobra.Command {
	var name, data string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "create-key --project P [--name N] [--scopes S,...] [--data DIR]",
		Short: "Create a project's API key on the store directly",
		Long: `Create an API key for any project, straight on the store: this is how an
operator makes the first key of a project. With the embedded store it needs the
data folder to itself (stop "mobius serve" first); with DynamoDB it works at any
time. The key gets every scope unless --scopes says otherwise, and is printed
this once. With -o json it prints {"id","project","key"}.`,
		Example: `  mobius admin create-key --project acme --name bootstrap
  MOBIUS_STORE=dynamodb MOBIUS_TABLE=mobius MOBIUS_KMS_KEY_ID=alias/mobius \
    mobius admin create-key --project acme -o json`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			project := c.project
			if !c.global.Changed("project") {
				project = c.getenv("MOBIUS_PROJECT")
			}
			if project == "" {
				return usagef("--project is required")
			}
			if !secrets.ValidProject(project) {
				return usagef("invalid --project %q: 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit", secrets.Shorten(project, 70))
			}
			if len(scopes) == 0 {
				scopes = secrets.AllScopes
			}
			cfg, err := app.ConfigFromEnv(c.getenv)
			if err != nil {
				return usagef("%v", err)
			}
			if cmd.Flags().Changed("data") {
				if data == "" {
					return usagef("--data must not be empty")
				}
				cfg.DataDir = data
			}
			logger := slog.New(slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: max(cfg.LogLevel, slog.LevelWarn)}))
			a, err := app.New(c.ctx, cfg, logger)
			if err != nil {
				return storeError(err, cfg)
			}
			defer a.Close()
			k, key, err := a.Service.CreateAPIKey(c.ctx, project, name, scopes)
			if err != nil {
				return domainError(err)
			}
			if c.json() {
				_, err = fmt.Fprintf(c.stdout, "{\"id\":%q,\"project\":%q,\"key\":%q}\n", k.ID, k.Project, key)
				return err
			}
			t := newTable(c.stdout)
			t.row("ID:", k.ID)
			t.row("Project:", k.Project)
			t.row("Name:", k.Name)
			t.row("Scopes:", strings.Join(k.Scopes, ","))
			t.row("Key:", key)
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(c.stderr, "Store the key now: it is not shown again.")
			return nil
		}),
	}
	cmd.Flags().StringVar(&name, "name", "admin", "a label for the key")
	cmd.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated (default: every scope)")
	cmd.Flags().StringVar(&data, "data", "", "data folder of the embedded store (env MOBIUS_DATA)")
	return cmd
}

func (c *cli) adminCreateTable() *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "create-table [--table NAME]",
		Short: "Create the DynamoDB table of the store",
		Long: `Create the DynamoDB table (MOBIUS_TABLE, or --table) as template.yaml declares it:
string keys PK and SK, on-demand billing, time to live on expires_at. It waits
until the table is ACTIVE. A table that already exists is left as it is. The AWS
SDK's variables (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, credentials) apply.`,
		Example: `  MOBIUS_TABLE=mobius mobius admin create-table
  AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 mobius admin create-table --table mobius`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("table") {
				table = c.getenv("MOBIUS_TABLE")
			}
			if table == "" {
				return usagef("no table name: set MOBIUS_TABLE or --table")
			}
			awsCfg, err := awsconfig.LoadDefaultConfig(c.ctx)
			if err != nil {
				return fmt.Errorf("loading the AWS configuration: %w", err)
			}
			if err := dynamo.CreateTable(c.ctx, dynamodb.NewFromConfig(awsCfg), table); err != nil {
				return err
			}
			if c.json() {
				_, err = fmt.Fprintf(c.stdout, "{\"table\":%q,\"status\":\"ACTIVE\"}\n", table)
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Table %s is ACTIVE.\n", table)
			return err
		}),
	}
	cmd.Flags().StringVar(&table, "table", "", "table name (env MOBIUS_TABLE)")
	return cmd
}

// embeddedDataDir is the data folder an embedded-store command works on:
// --data, else MOBIUS_DATA, else the per-user folder. Another store is a
// usage error naming what to use instead.
func (c *cli) embeddedDataDir(cmd *cobra.Command, data, what string) (string, error) {
	cfg, err := app.ConfigFromEnv(c.getenv)
	if err != nil {
		return "", usagef("%v", err)
	}
	if cfg.Store != app.StoreBolt {
		return "", usagef("mobius admin %s works on the embedded store, and MOBIUS_STORE=%s: for DynamoDB use the table's point-in-time recovery or on-demand backups (aws dynamodb create-backup), with the KMS key kept", what, cfg.Store)
	}
	if cmd.Flags().Changed("data") {
		if data == "" {
			return "", usagef("--data must not be empty")
		}
		return data, nil
	}
	return cfg.DataDir, nil
}

func (c *cli) adminBackup() *cobra.Command {
	var data, to, withKey string
	var force bool
	cmd := &cobra.Command{
		Use:   "backup --to FILE [--with-key KEYFILE] [--force] [--data DIR]",
		Short: "Write a consistent copy of the embedded store, running or stopped",
		Long: `Write a consistent copy of the embedded store's data file to FILE (mode 0600),
without stopping anything: a running "mobius serve" sends it through its
operator socket in the data folder; a stopped store is read directly. The copy
is written under a temporary name, checked as a server's start checks a data
file, plus bbolt's full consistency check and the key check against the data
folder's key file, and only then given its name: FILE is whole or absent.

The copy holds ciphertext only, and opens only with the key file master.key.
Keep the two apart: --with-key KEYFILE writes a copy of the key (mode 0600) to
another file, for another medium or a secrets vault. Whoever holds both can
read every secret; whoever holds only one, nothing.

An existing FILE or KEYFILE is refused unless --force.`,
		Example: `  mobius admin backup --to /backup/mobius-$(date +%F).db
  mobius admin backup --to mobius.db.bak --with-key /media/vault/mobius.key --data ./data`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef("--to is required: the file to write the copy to")
			}
			dir, err := c.embeddedDataDir(cmd, data, "backup")
			if err != nil {
				return err
			}
			res, err := app.Backup(c.ctx, app.BackupOptions{DataDir: dir, To: to, WithKey: withKey, Force: force})
			if err != nil {
				return err
			}
			source := "the stopped store"
			if res.Online {
				source = "the running server"
			}
			if c.json() {
				out := map[string]any{"to": res.To, "bytes": res.Bytes, "items": res.Items, "online": res.Online,
					"key_checked": res.KeyChecked, "key_id": res.KeyID, "with_key": res.WithKey}
				if err := printJSON(c.stdout, out); err != nil {
					return err
				}
			} else {
				checked := "bbolt's consistency check and every item"
				if res.KeyChecked {
					checked += ", and the key check (" + res.KeyID + ")"
				}
				t := newTable(c.stdout)
				t.row("Backup:", res.To)
				t.row("From:", source+" in "+dir)
				t.row("Bytes:", fmt.Sprint(res.Bytes))
				t.row("Items:", fmt.Sprint(res.Items))
				t.row("Checked:", checked)
				if res.WithKey != "" {
					t.row("Key copy:", res.WithKey)
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			switch {
			case res.KeyID == "":
				fmt.Fprintf(c.stderr, "Warning: %s is missing, so the copy was not checked against a key and opens only with the key file kept elsewhere.\n", res.KeyFile)
			case res.WithKey != "":
				fmt.Fprintf(c.stderr, "The key (%s) is in %s: keep it apart from %s (another medium or a secrets vault); whoever holds both can read every secret.\n", res.KeyID, res.WithKey, res.To)
			default:
				fmt.Fprintf(c.stderr, "%s holds ciphertext only and opens only with %s (%s): keep a copy of that key apart from the data copy (--with-key KEYFILE writes one); without it the backup cannot be restored, and whoever holds both can read every secret.\n", res.To, res.KeyFile, res.KeyID)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&to, "to", "", "the file to write the data copy to (required)")
	cmd.Flags().StringVar(&withKey, "with-key", "", "also write a copy of the key file here (mode 0600); keep it apart from the data copy")
	cmd.Flags().BoolVar(&force, "force", false, "replace --to and --with-key if they exist")
	cmd.Flags().StringVar(&data, "data", "", "data folder of the embedded store (env MOBIUS_DATA)")
	return cmd
}

func (c *cli) adminRestore() *cobra.Command {
	var data, from, key string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from FILE [--key KEYFILE] [--force] [--data DIR]",
		Short: "Install a backup as the embedded store of a data folder",
		Long: `Install the data copy FILE, written by "mobius admin backup", as the store of the
data folder, with the key file KEYFILE that opens it (without --key, the data
folder's own master.key). The server must be stopped.

Before anything in the folder changes, the backup is copied into it under a
temporary name and checked: as a server's start checks a data file, bbolt's full
consistency check, and the key check (the key is the one the backup is sealed
under). Only then is it renamed into place, and the key file after it.

A folder whose store holds data, or whose key file is another key, is refused
unless --force, which replaces them.`,
		Example: `  mobius admin restore --from /backup/mobius-2026-03-01.db --key /media/vault/mobius.key --data ./data
  mobius admin restore --from mobius.db.bak --force`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return usagef("--from is required: the backup file to restore")
			}
			dir, err := c.embeddedDataDir(cmd, data, "restore")
			if err != nil {
				return err
			}
			res, err := app.Restore(c.ctx, app.RestoreOptions{DataDir: dir, From: from, KeyFile: key, Force: force})
			if err != nil {
				return err
			}
			keyNote := "kept the folder's key file"
			if res.KeyInstalled {
				keyNote = "installed from " + key
			}
			if c.json() {
				if err := printJSON(c.stdout, map[string]any{"data_file": res.DataFile, "items": res.Items, "key_id": res.KeyID,
					"key_installed": res.KeyInstalled, "replaced": res.Replaced}); err != nil {
					return err
				}
			} else {
				t := newTable(c.stdout)
				t.row("Restored:", from)
				t.row("Into:", res.DataFile)
				t.row("Items:", fmt.Sprint(res.Items))
				t.row("Key:", keyNote)
				if err := t.flush(); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.stderr, "Start the server on it with: mobius serve --data %s\n", dir)
			return nil
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file (required)")
	cmd.Flags().StringVar(&key, "key", "", "the key file that opens the backup (default: the data folder's master.key)")
	cmd.Flags().BoolVar(&force, "force", false, "replace a store that holds data, and another key file")
	cmd.Flags().StringVar(&data, "data", "", "data folder of the embedded store (env MOBIUS_DATA)")
	return cmd
}

func (c *cli) adminCheck() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "check [--data DIR]",
		Short: "Check the embedded store's data and key files",
		Long: `Check the embedded store of a stopped server, changing nothing: the data file's
structure (as a start checks it), bbolt's full consistency check, every item's
header, the key file (present, 32 bytes, mode 0600), and that the key file is
the key the data is sealed under. Each problem is one line on standard output,
naming the file, what is wrong and what to do; the exit status is 1 if there is
any. A running server holds the store: stop it, or check a copy made with
"mobius admin backup", which runs the same checks on it.`,
		Example: `  mobius admin check
  mobius admin check --data /var/lib/mobius -o json`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			dir, err := c.embeddedDataDir(cmd, data, "check")
			if err != nil {
				return err
			}
			rep, err := app.Check(c.ctx, dir)
			if err != nil {
				return err
			}
			if c.json() {
				problems := rep.Problems
				if problems == nil {
					problems = []string{}
				}
				if err := printJSON(c.stdout, map[string]any{"data_file": rep.DataFile, "file_bytes": rep.FileBytes, "items": rep.Items,
					"key_file": rep.KeyFile, "key_id": rep.KeyID, "problems": problems}); err != nil {
					return err
				}
			} else if len(rep.Problems) == 0 {
				fmt.Fprintf(c.stdout, "ok: %s (%d items, %d bytes) and %s (%s): the file checks, bbolt's consistency check passes, and the key opens the data\n",
					rep.DataFile, rep.Items, rep.FileBytes, rep.KeyFile, orNone(rep.KeyID))
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintln(c.stdout, p)
				}
			}
			if n := len(rep.Problems); n > 0 {
				return fmt.Errorf("%d problem(s) in %s", n, dir)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&data, "data", "", "data folder of the embedded store (env MOBIUS_DATA)")
	return cmd
}

func (c *cli) adminCompact() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "compact [--data DIR]",
		Short: "Rewrite a stopped embedded store into a fresh, smaller data file",
		Long: `Rewrite the data file of a stopped embedded store into a fresh file that holds
only what the store holds now, for a store that shrank (the file never gives
back the space of what was deleted), and swap it in atomically: the data file
is the old one or the new one, whole. The store is checked first and the new
file after (the same items and bytes); a store that does not check is left as
it is. It prints the file's size before and after.`,
		Example: `  mobius admin compact
  mobius admin compact --data /var/lib/mobius -o json`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			dir, err := c.embeddedDataDir(cmd, data, "compact")
			if err != nil {
				return err
			}
			res, err := app.Compact(c.ctx, dir)
			if err != nil {
				return err
			}
			if c.json() {
				return printJSON(c.stdout, map[string]any{"data_file": res.DataFile, "before": res.Before, "after": res.After, "items": res.Items})
			}
			_, err = fmt.Fprintf(c.stdout, "Compacted %s: %d bytes before, %d after (%d items).\n", res.DataFile, res.Before, res.After, res.Items)
			return err
		}),
	}
	cmd.Flags().StringVar(&data, "data", "", "data folder of the embedded store (env MOBIUS_DATA)")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "no key"
	}
	return s
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
