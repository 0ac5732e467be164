package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/runner"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Limits of `mobius resolve`.
const (
	maxParamsInput = 6 << 20          // the parameters file: Lambda's payload limit
	resolveTimeout = 60 * time.Second // the whole call, retries included
)

// plaintextWarning is said once on stderr when the output goes to a
// terminal.
const plaintextWarning = "warning: the output holds plaintext secret values"

func (c *cli) resolveCommand() *cobra.Command {
	var file, runJSON, grant, stepJSON, function string
	cmd := &cobra.Command{
		Use:   "resolve --file PARAMS.json [--grant G | --run JSON] [--step JSON] [--function NAME_OR_ARN]",
		Short: "Resolve the secret references in a file, as a loop runner does",
		Long: `Resolve every ${secret:NAME.KEY} in the JSON of --file ("-" for standard input)
through the resolve function, exactly as a loop runner does, and print the
substituted JSON; -o json prints the whole result {"output", "resolved"}.

By default it invokes the Lambda Invoke API of the configured server
(mobius serve answers it at --endpoint, as function mobius-resolve); with
--function NAME_OR_ARN it invokes that deployed function through the AWS SDK's
default configuration (AWS_REGION, AWS_PROFILE, credentials) instead.

The call is authorized by a resolve grant: --grant (env MOBIUS_GRANT), or, when
none is given, one minted with the configured API key for the secrets the
file names, valid for 60 seconds (--run then gives the run identifiers kept
with it).
--step gives the step identifiers kept in the audit of each resolution.

The output holds plaintext: at a terminal a warning says so on stderr. Nothing
is substituted unless every reference resolves; a failure prints one line on
stderr and exits 1.`,
		Example: `  mobius resolve --file params.json
  mobius resolve --file params.json --run '{"run_id":"r1"}' --step '{"step":"fetch"}' -o json
  MOBIUS_GRANT=mbg_... mobius resolve --file - < params.json
  mobius resolve --file params.json --grant "$GRANT" --function arn:aws:lambda:us-east-1:123456789012:function:mobius-ResolveFunction-AbC`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if !f.Changed("grant") {
				grant = c.getenv("MOBIUS_GRANT")
			}
			if !f.Changed("file") {
				return usagef("give the parameters with --file FILE (\"-\" for standard input)")
			}
			if f.Changed("grant") && grant == "" {
				return usagef("--grant must not be empty")
			}
			if f.Changed("function") && function == "" {
				return usagef("--function must not be empty")
			}
			if grant != "" && f.Changed("run") {
				return usagef("--run applies to the grant mobius mints; a grant given with --grant (or MOBIUS_GRANT) already holds its run")
			}
			name, input, err := readParams(file, c.stdin)
			if err != nil {
				return err
			}
			run, err := jsonObjectFlag("--run", runJSON)
			if err != nil {
				return err
			}
			step, err := jsonObjectFlag("--step", stepJSON)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.ctx, resolveTimeout)
			defer cancel()

			rc, local, err := c.resolveClient(ctx, function)
			if err != nil {
				return err
			}
			if grant == "" {
				g, err := c.mintGrant(ctx, name, input, run)
				if err != nil {
					return err
				}
				grant = g
			}
			var st any
			if step != nil {
				st = step
			}
			res, err := rc.Resolve(ctx, grant, input, st)
			if err != nil {
				return resolveError(err, local)
			}
			if isTerminal(c.stdout) {
				fmt.Fprintln(c.stderr, plaintextWarning)
			}
			if c.json() {
				return c.printRaw(res.Raw)
			}
			return c.printRaw(res.Output)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", `the action's parameters, any JSON ("-" for standard input)`)
	f.StringVar(&grant, "grant", "", "a resolve grant (env MOBIUS_GRANT); without one, mobius mints one with the API key, valid for 60 seconds")
	f.StringVar(&runJSON, "run", "", `the run identifiers of the grant mobius mints, a JSON object, e.g. '{"run_id":"r1"}'`)
	f.StringVar(&stepJSON, "step", "", `the step identifiers kept in the audit, a JSON object, e.g. '{"step":"fetch"}'`)
	f.StringVar(&function, "function", "", "invoke this deployed function (name or ARN) through the AWS SDK's configuration instead of --endpoint")
	return cmd
}

// readParams reads the parameters file: one JSON value, at most
// maxParamsInput bytes. Its problems are usage errors naming the line, never
// quoting it.
func readParams(path string, stdin io.Reader) (string, json.RawMessage, error) {
	name, data, err := readInputFile(path, stdin, maxParamsInput, ", the most one invocation takes")
	if err != nil {
		return "", nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", nil, usagef("%s:%d: invalid JSON", name, 1+bytes.Count(data[:se.Offset], []byte("\n")))
		}
		return "", nil, usagef("%s: invalid JSON: it ends early or is empty", name)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", nil, usagef("%s: more than one JSON value", name)
	}
	return name, v, nil
}

// jsonObjectFlag checks that a flag's value, if given, is a JSON object.
func jsonObjectFlag(flag, value string) (json.RawMessage, error) {
	if value == "" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &m); err != nil || m == nil {
		return nil, usagef(`%s must be a JSON object, e.g. '{"run_id":"r1"}'`, flag)
	}
	return json.RawMessage(value), nil
}

// resolveClient is the runner's client of the function: the configured
// server's Invoke API, or with function set the deployed function through
// the AWS SDK's default configuration. local reports the first.
func (c *cli) resolveClient(ctx context.Context, function string) (rc *runner.Client, local bool, err error) {
	if function != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("loading the AWS configuration: %w", err)
		}
		return runner.New(lambda.NewFromConfig(awsCfg), function), false, nil
	}
	endpoint, _, _, err := c.settings()
	if err != nil {
		return nil, false, err
	}
	region := c.getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	lc := lambda.New(lambda.Options{
		Region:       region,
		Credentials:  aws.AnonymousCredentials{}, // the grant authorizes the call
		BaseEndpoint: aws.String(endpoint),
		AppID:        "mobius-cli/" + version,
	})
	return runner.New(lc, runner.LocalFunction), true, nil
}

// mintGrant makes a grant for the secrets input names, with the configured
// API key, that lasts only as long as the call may (resolveTimeout): it
// serves this one call, so it should not stay usable, or listed among the
// project's live grants, for the server's default hour.
func (c *cli) mintGrant(ctx context.Context, file string, input json.RawMessage, run json.RawMessage) (string, error) {
	if _, apiKey, _, err := c.settings(); err != nil {
		return "", err
	} else if apiKey == "" {
		return "", usagef("no grant, and no API key to mint one: give --grant (or MOBIUS_GRANT), or set MOBIUS_API_KEY")
	}
	cl, err := c.client()
	if err != nil {
		return "", err
	}
	names, err := referencedSecrets(input)
	if err != nil {
		return "", usagef("%s: %v", file, err)
	}
	ttl := int64(resolveTimeout / time.Second)
	g, err := cl.CreateResolveGrant(ctx, "", api.CreateResolveGrantRequest{Secrets: names, Run: run, TTLSeconds: &ttl})
	if err != nil {
		return "", fmt.Errorf("minting a resolve grant: %w", err)
	}
	return g.Grant, nil
}

// referencedSecrets lists, sorted, the secrets named by the well-formed
// references in the strings of input. Malformed ones are left to the
// function, which names every one.
func referencedSecrets(input json.RawMessage) ([]string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("invalid JSON")
	}
	seen := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			t, _ := secrets.ParseReferences(x)
			for _, ref := range t.Refs() {
				seen[ref.Name] = true
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// resolveError explains the failures a user can act on.
func resolveError(err error, local bool) error {
	var e *runner.Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case local && e.Type == runner.TypeConnection:
		return fmt.Errorf(`%w (is the server running? Start one with "mobius serve", or set --endpoint or MOBIUS_ENDPOINT)`, err)
	case local && (e.Type == runner.TypeUnknownError || e.Type == runner.TypeFunctionNotFound):
		return fmt.Errorf("%w (the endpoint does not serve the resolve function's Invoke API; for the deployed function use --function <ResolveFunctionArn>)", err)
	}
	return err
}

// isTerminal reports whether w is a terminal. A writer that is not a file
// answers for itself through IsTerminal (as tests do).
func isTerminal(w any) bool {
	switch x := w.(type) {
	case interface{ IsTerminal() bool }:
		return x.IsTerminal()
	case *os.File:
		return term.IsTerminal(int(x.Fd()))
	}
	return false
}
