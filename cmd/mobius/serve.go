package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/app"
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
($XDG_CONFIG_HOME/mobius/config.json), so "mobius secrets list" works next.

With MOBIUS_STORE=dynamodb (and MOBIUS_TABLE, MOBIUS_KMS_KEY_ID and the AWS SDK's
variables) it serves DynamoDB and KMS instead. Logs are JSON lines on standard
error; SIGINT or SIGTERM stops it gracefully.`,
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
			return c.serve(cfg, app.NewLogger(c.stderr, cfg))
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
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
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
			path, err := saveConfig(c.getenv, fileConfig{Endpoint: endpoint, Project: app.DefaultProject, APIKey: key})
			if err != nil {
				logger.Warn("could not save the CLI config file; use the export lines above", "error", err.Error())
			} else {
				logger.Info("saved the endpoint, project and first API key for the CLI", "config", path)
			}
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
// unspecified address (0.0.0.0, ::) is reached on loopback.
func endpointOf(ln net.Addr) string {
	host, port := "127.0.0.1", ""
	if ta, ok := ln.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
		switch {
		case ta.IP == nil || ta.IP.IsUnspecified():
			if ta.IP != nil && ta.IP.To4() == nil {
				host = "::1"
			}
		default:
			host = ta.IP.String()
		}
	} else if h, p, err := net.SplitHostPort(ln.String()); err == nil {
		host, port = h, p
	}
	return "http://" + net.JoinHostPort(host, port)
}
