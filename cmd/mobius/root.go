package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mobius-secrets/mobius/pkg/client"
)

// Defaults of the global settings.
const (
	defaultEndpoint = "http://127.0.0.1:8080"
	defaultProject  = "default"
)

// cli is one invocation: its environment, streams and global flags.
type cli struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	loc    *time.Location
	now    func() time.Time // the clock of spans from now (--expires-in 30d)

	global   *pflag.FlagSet
	endpoint string
	apiKey   string
	project  string
	output   string

	started bool // a command's own work began (see action)
}

func (c *cli) rootCommand() *cobra.Command {
	if c.now == nil {
		c.now = time.Now
	}
	root := &cobra.Command{
		Use:   "mobius",
		Short: "Mobius Secrets: store, rotate and audit secrets",
		Long: `mobius is the command line of Mobius Secrets. It manages secrets, API keys and
resolve grants and follows the change feed through the HTTP API, runs the local server (mobius serve), and has the
operator's tools (mobius admin).

Settings come from flags, then the environment (MOBIUS_ENDPOINT, MOBIUS_API_KEY,
MOBIUS_PROJECT), then the config file that "mobius serve" writes on its first
start, then the defaults.

Exit status: 0 success, 1 API or network error, 2 usage error.`,
		Example: `  mobius serve
  mobius secrets create --name openai --file creds.json
  mobius secrets list -o json`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version,
	}
	asGroup(root)
	root.SetVersionTemplate("mobius {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	root.CompletionOptions.HiddenDefaultCmd = false

	f := root.PersistentFlags()
	f.StringVar(&c.endpoint, "endpoint", "", "API endpoint (env MOBIUS_ENDPOINT; default "+defaultEndpoint+")")
	f.StringVar(&c.apiKey, "api-key", "", "API key (env MOBIUS_API_KEY); prefer the environment to keep it out of shell history")
	f.StringVar(&c.project, "project", "", "project (env MOBIUS_PROJECT; default "+defaultProject+")")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	c.global = f
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if c.output != "table" && c.output != "json" {
			return usagef("invalid --output %q: use table or json", c.output)
		}
		return nil
	}

	root.AddCommand(
		c.secretsCommand(),
		c.keysCommand(),
		c.eventsCommand(),
		c.grantsCommand(),
		c.refsCommand(),
		c.adminCommand(),
		c.resolveCommand(),
		c.serveCommand(),
		c.versionCommand(),
	)
	return root
}

// group returns a command that only holds subcommands: alone it prints its
// help; with an unknown subcommand it is a usage error.
func (c *cli) group(use, short, long string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	asGroup(cmd)
	return cmd
}

// asGroup makes cmd answer as a group: alone it prints its help; with an
// unknown subcommand it says so, suggesting the nearest ones. (Unknown
// flags stay usage errors: "mobius --bogus" must not print help and pass.)
func asGroup(cmd *cobra.Command) {
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usagef("%s (see %s --help)", msg, cmd.CommandPath())
	}
}

// exactArgs is cobra.ExactArgs with names in its message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		for i, a := range args {
			if a == "" {
				return usagef("%s must not be empty", names[i])
			}
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// setting resolves one global setting: flag, then environment, then config
// file, then the default.
func (c *cli) setting(flag, env string, fromFile func(*fileConfig) string, def string) (string, error) {
	if c.global.Changed(flag) {
		v, _ := c.global.GetString(flag)
		return v, nil
	}
	if v := c.getenv(env); v != "" {
		return v, nil
	}
	cfg, err := loadConfig(c.getenv)
	if err != nil {
		return "", err
	}
	if cfg != nil {
		if v := fromFile(cfg); v != "" {
			return v, nil
		}
	}
	return def, nil
}

// settings resolves the endpoint, API key and project.
func (c *cli) settings() (endpoint, apiKey, project string, err error) {
	if endpoint, err = c.setting("endpoint", "MOBIUS_ENDPOINT", func(f *fileConfig) string { return f.Endpoint }, defaultEndpoint); err != nil {
		return
	}
	if apiKey, err = c.setting("api-key", "MOBIUS_API_KEY", func(f *fileConfig) string { return f.APIKey }, ""); err != nil {
		return
	}
	if project, err = c.setting("project", "MOBIUS_PROJECT", func(f *fileConfig) string { return f.Project }, defaultProject); err != nil {
		return
	}
	u, perr := url.Parse(endpoint)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", "", usagef("invalid endpoint %q: want a URL such as %s", endpoint, defaultEndpoint)
	}
	if project == "" {
		return "", "", "", usagef("the project is empty: set --project or MOBIUS_PROJECT")
	}
	return endpoint, apiKey, project, nil
}

// client returns an API client for the resolved settings. Without an API
// key it is a usage error: there is nothing to authenticate with.
func (c *cli) client() (*client.Client, error) {
	endpoint, apiKey, project, err := c.settings()
	if err != nil {
		return nil, err
	}
	if apiKey == "" {
		return nil, usagef(`no API key: set MOBIUS_API_KEY or --api-key (start a local server with "mobius serve" to get one)`)
	}
	return client.New(endpoint, apiKey, client.WithProject(project), client.WithUserAgent("mobius-cli/"+version)), nil
}

func (c *cli) json() bool { return c.output == "json" }

// printRaw writes the API's JSON exactly as it came, ending in a newline.
func (c *cli) printRaw(raw []byte) error {
	if _, err := c.stdout.Write(raw); err != nil {
		return err
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		_, err := io.WriteString(c.stdout, "\n")
		return err
	}
	return nil
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of mobius",
		Example: "  mobius version\n  mobius version -o json",
		Args:    noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			if c.json() {
				_, err := fmt.Fprintf(c.stdout, "{\"version\":%q}\n", version)
				return err
			}
			_, err := fmt.Fprintf(c.stdout, "mobius %s\n", version)
			return err
		}),
	}
}
