package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/internal/asynclog"
	"github.com/mobius-secrets/mobius/pkg/app"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

func (c *cli) serveCommand() *cobra.Command {
	var addr, data string
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8080] [--data DIR]",
		Short: "Run the API locally on the embedded store",
		Long: `Serve the HTTP API, the same handler as the Lambda function, on the embedded
store (one bbolt file) and a local key file under --data (default: the per-user
data folder, $XDG_DATA_HOME/mobius or ~/.local/share/mobius).

On the first start it creates project "default" and an API key with every scope,
prints, each on its own line,

  export MOBIUS_ENDPOINT=...
  export MOBIUS_PROJECT=default
  export MOBIUS_API_KEY=...

(the key only this once) and saves them in the per-user config file
($XDG_CONFIG_HOME/mobius/config.json), so "mobius secrets list" works next,
unless that file belongs to a server of another data folder that still exists.
A later start on another address updates the endpoint in the file it wrote.

On the same address it answers the Lambda Invoke API of the resolve function
(POST /2015-03-31/functions/mobius-resolve/invocations), so loop runners, the
AWS SDKs, "aws lambda invoke --endpoint-url" and "mobius resolve" resolve
references locally exactly as they do against the deployed function. No AWS
signature is checked there: each invocation is authorized by its resolve grant.

With MOBIUS_STORE=dynamodb (and MOBIUS_TABLE, MOBIUS_KMS_KEY_ID and the AWS SDK's
variables) it serves DynamoDB and KMS instead. Logs are JSON lines on standard
error; SIGINT or SIGTERM stops it gracefully.

On the embedded store it also answers "mobius admin backup" on a Unix socket in
the data folder (admin.sock, mode 0600), so a backup needs no stop.
MOBIUS_IDEMPOTENCY_LEASE (default 15s) is how long an Idempotency-Key stays
claimed by a request the server never finished (it was killed): a retry in that
time answers 409 with Retry-After, a retry after it runs the request once.`,
		Example: `  mobius serve
  mobius serve --addr 127.0.0.1:9090 --data ./data
  MOBIUS_LOG_LEVEL=debug mobius serve --data /var/lib/mobius`,
		Args: noArgs,
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			cfg, err := app.ConfigFromEnv(c.getenv)
			if err != nil {
				return usagef("%v", err)
			}
			if cmd.Flags().Changed("addr") || cfg.Addr == "" {
				cfg.Addr = addr
			}
			if cmd.Flags().Changed("data") {
				if data == "" {
					return usagef("--data must not be empty")
				}
				cfg.DataDir = data
			}
			// Log lines are written from a goroutine of their own, so that
			// no request waits on standard error (a terminal, a pipe);
			// what is held is written before the command returns.
			lw := asynclog.New(c.stderr, 0)
			defer lw.Close()
			return c.serve(cfg, app.NewLogger(lw, cfg))
		}),
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "listen address (env MOBIUS_ADDR); port 0 picks a free port")
	cmd.Flags().StringVar(&data, "data", "", "data folder of the embedded store (env MOBIUS_DATA)")
	return cmd
}

// serve runs the server until the context ends. The first API key is made
// once the listener is bound, so that it is never made and then lost to a
// port already in use.
func (c *cli) serve(cfg app.Config, logger *slog.Logger) error {
	a, err := app.New(c.ctx, cfg, logger)
	if errors.Is(err, bolt.ErrInUse) {
		return fmt.Errorf("the data folder %s is in use by another mobius server: stop it, or give this one another folder with --data", cfg.DataDir)
	}
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	// Reminders, trash purges and expired items, every minute, stopped
	// (and waited for) before the store closes.
	defer a.StartSweeper(ctx, app.SweepInterval)()
	// The operator's socket: how "mobius admin backup" copies the store
	// while this server holds it. Without it the server still serves.
	stopAdmin, err := a.ServeAdmin(ctx)
	if err != nil {
		logger.Warn("online backups are off", "error", err.Error())
	} else {
		defer stopAdmin()
	}
	var bootErr error
	err = app.ListenAndServe(ctx, cfg.Addr, a.Handler, logger, func(ln net.Addr) {
		endpoint := endpointOf(ln)
		key, created, err := a.Bootstrap(ctx)
		if err != nil {
			bootErr = err
			cancel()
			return
		}
		if created {
			fmt.Fprintf(c.stdout, "export MOBIUS_ENDPOINT=%s\nexport MOBIUS_PROJECT=%s\nexport MOBIUS_API_KEY=%s\n", endpoint, app.DefaultProject, key)
			fmt.Fprintln(c.stdout, tryLine(os.Args[0]))
		}
		if cfg.Store == app.StoreBolt {
			c.rememberServer(ctx, a.Service, endpoint, cfg.DataDir, key, logger)
		}
		logger.Info("mobius server is running", "endpoint", endpoint, "store", cfg.Store, "data", cfg.DataDir, "version", version)
	})
	if bootErr != nil {
		return bootErr
	}
	if err != nil {
		return fmt.Errorf("serving on %s: %w", cfg.Addr, err)
	}
	logger.Info("mobius server stopped")
	return nil
}

// endpointOf is the URL a client on this machine uses to reach ln: an
// unspecified address (0.0.0.0, ::) is reached on 127.0.0.1. (Go listens on
// 0.0.0.0 with a dual-stack socket that reports itself as [::], so the
// address family says nothing about what the user asked for.)
func endpointOf(ln net.Addr) string {
	host, port := "127.0.0.1", ""
	if ta, ok := ln.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
		if ta.IP != nil && !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		}
	} else if h, p, err := net.SplitHostPort(ln.String()); err == nil {
		host, port = h, p
	}
	return "http://" + net.JoinHostPort(host, port)
}

// rememberServer keeps the CLI config file pointing at this server when
// the file is this server's to write. On a first start (firstKey set) it
// saves the endpoint, project and key, unless the file belongs to the
// server of another data folder that still exists: that one is left as it
// is, so a second server does not take the CLI away from the first. On a
// later start it updates the endpoint when the file's key is a key of this
// store, so a restart on another port keeps the CLI working.
func (c *cli) rememberServer(ctx context.Context, svc *secrets.Service, endpoint, dataDir, firstKey string, logger *slog.Logger) {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	path, _ := configPath(c.getenv)
	old, err := loadConfig(c.getenv)
	if err != nil {
		logger.Warn("could not read the CLI config file; left as it is", "config", path, "error", errorLine(err))
		return
	}
	var next fileConfig
	switch {
	case firstKey != "":
		if old != nil && old.APIKey != "" && old.Data != "" && old.Data != dataDir && dirExists(old.Data) {
			logger.Warn("left the CLI config file as it is: it belongs to the server of another data folder; use the export lines above, or remove the file to make this server the CLI's default",
				"config", path, "its_data", old.Data)
			return
		}
		next = fileConfig{Endpoint: endpoint, Project: app.DefaultProject, APIKey: firstKey, Data: dataDir}
	case old == nil || old.APIKey == "" || (old.Endpoint == endpoint && old.Data == dataDir):
		return
	case !keyOfStore(ctx, svc, old):
		return
	default:
		next = *old
		next.Endpoint, next.Data = endpoint, dataDir
	}
	if _, err := saveConfig(c.getenv, next); err != nil {
		logger.Warn("could not save the CLI config file; use the export lines or set MOBIUS_ENDPOINT", "config", path, "error", err.Error())
		return
	}
	if firstKey != "" {
		logger.Info("saved the endpoint, project and first API key for the CLI", "config", path)
	} else {
		logger.Info("updated the endpoint in the CLI config file", "config", path, "endpoint", endpoint)
	}
}

// keyOfStore reports whether cfg's API key is a key of cfg's project in
// svc's store. It reads the key list (no use is recorded).
func keyOfStore(ctx context.Context, svc *secrets.Service, cfg *fileConfig) bool {
	project := cfg.Project
	if project == "" {
		project = app.DefaultProject
	}
	keys, err := svc.ListAPIKeys(ctx, project)
	if err != nil {
		return false
	}
	hash := secrets.HashAPIKey(cfg.APIKey)
	for _, k := range keys {
		if k.Hash == hash {
			return true
		}
	}
	return false
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// tryLine is the shell comment printed after the export lines of a first
// start: one line that stores a secret and resolves a reference to it, as a
// loop runner would, with the binary as it was started.
func tryLine(self string) string {
	bin := "mobius"
	if strings.Contains(self, "/") {
		bin = self
	}
	return "# then try: " + bin + ` secrets create --name demo --values '{"token":"not-a-real-secret"}' && echo '{"auth":"Bearer ${secret:demo.token}"}' | ` + bin + " resolve --file -"
}
