package main

import (
	"errors"
	"fmt"
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
and KMS with MOBIUS_STORE=dynamodb, MOBIUS_TABLE and MOBIUS_KMS_KEY_ID.`)
	cmd.AddCommand(c.adminCreateKey(), c.adminCreateTable())
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
				return usagef("invalid --project %q: 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit", shorten(project, 70))
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
