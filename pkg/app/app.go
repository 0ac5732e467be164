// Package app is the composition root: it reads the configuration, picks
// the store and the key wrapper, and builds the service and the HTTP
// handler that `mobius serve`, the CLI's admin commands and the Lambda
// functions share.
//
// Only cmd/ and functions/ import it.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// Store kinds.
const (
	StoreBolt     = "bolt"
	StoreDynamoDB = "dynamodb"
)

// DefaultProject is the project `mobius serve` creates on first start.
const DefaultProject = "default"

// Files under the data folder of the embedded store.
const (
	dataFileName   = "mobius.db"
	keyFileName    = "master.key"
	tokenKeyName   = "token.key"
	bootstrapMark  = ".bootstrapped"
	bootstrapName  = "bootstrap"
	defaultAddress = "127.0.0.1:8080"
)

// Config selects and locates the store and the keys.
type Config struct {
	Store    string        // "bolt" (default) or "dynamodb"
	DataDir  string        // bolt: folder of the data file and key files
	Addr     string        // listen address of `mobius serve`
	AWS      awsapp.Config // dynamodb: table, KMS key, page-token key
	LogLevel slog.Level    // MOBIUS_LOG_LEVEL: debug, info, warn, error
}

// ConfigFromEnv reads MOBIUS_STORE, MOBIUS_DATA, MOBIUS_ADDR and
// MOBIUS_LOG_LEVEL through getenv, and with MOBIUS_STORE=dynamodb what
// awsapp.ConfigFromEnv reads.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Store:   strings.ToLower(strings.TrimSpace(getenv("MOBIUS_STORE"))),
		DataDir: getenv("MOBIUS_DATA"),
		Addr:    getenv("MOBIUS_ADDR"),
	}
	if cfg.Store == "" {
		cfg.Store = StoreBolt
	}
	if cfg.Addr == "" {
		cfg.Addr = defaultAddress
	}
	var err error
	if cfg.LogLevel, err = awsapp.LogLevel(getenv); err != nil {
		return Config{}, err
	}
	switch cfg.Store {
	case StoreBolt:
		if cfg.DataDir == "" {
			dir, err := DefaultDataDir(getenv)
			if err != nil {
				return Config{}, err
			}
			cfg.DataDir = dir
		}
	case StoreDynamoDB:
		if cfg.AWS, err = awsapp.ConfigFromEnv(getenv); err != nil {
			return Config{}, err
		}
	default:
		return Config{}, fmt.Errorf("MOBIUS_STORE=%q: want %q or %q", cfg.Store, StoreBolt, StoreDynamoDB)
	}
	return cfg, nil
}

// DefaultDataDir is the per-user data folder: $XDG_DATA_HOME/mobius, or
// ~/.local/share/mobius.
func DefaultDataDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "mobius"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no data folder: set MOBIUS_DATA or HOME: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".local", "share", "mobius"), nil
}

// NewLogger returns the JSON logger of the server at cfg's level.
func NewLogger(w io.Writer, cfg Config) *slog.Logger {
	return awsapp.NewLogger(w, cfg.LogLevel)
}

// App is the wired service and its HTTP handler.
type App struct {
	Service *secrets.Service
	Handler http.Handler

	cfg     Config
	log     *slog.Logger
	closers []func() error
}

// New opens the store and keys that cfg names and builds the service and
// the handler. Close the App when done.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.Store == "" {
		cfg.Store = StoreBolt
	}
	a := &App{cfg: cfg, log: logger}
	var tokenKey []byte
	switch cfg.Store {
	case StoreBolt:
		if cfg.DataDir == "" {
			return nil, errors.New("app: the embedded store needs a data folder (MOBIUS_DATA or --data)")
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("app: data folder: %w", err)
		}
		w, err := local.OpenFile(filepath.Join(cfg.DataDir, keyFileName))
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		tokenKey, err = readOrCreateKey(filepath.Join(cfg.DataDir, tokenKeyName))
		if err != nil {
			return nil, fmt.Errorf("app: page token key: %w", err)
		}
		st, err := bolt.Open(filepath.Join(cfg.DataDir, dataFileName), bolt.Options{})
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		a.closers = append(a.closers, st.Close)
		a.Service = secrets.NewService(st, w, secrets.Options{Logger: logger})
	case StoreDynamoDB:
		b, err := awsapp.Open(ctx, cfg.AWS, logger)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		a.Service, tokenKey = b.Service, b.PageTokenKey
	default:
		return nil, fmt.Errorf("app: unknown store %q: want %q or %q", cfg.Store, StoreBolt, StoreDynamoDB)
	}
	a.Handler = httpapi.NewHandler(a.Service, httpapi.Options{Logger: logger, PageTokenKey: tokenKey})
	return a, nil
}

// Config returns the configuration the App was built from.
func (a *App) Config() Config { return a.cfg }

// Close releases the store.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Bootstrap makes the first API key of project "default", with every
// scope, on the first start of an embedded store, and returns it (shown
// this once). It does so once per data folder: a marker remembers it, so
// that revoking every key later does not silently make a new one. If the
// project already has keys (made with `mobius admin create-key`), it only
// sets the marker. Other stores are bootstrapped with `mobius admin
// create-key`, and Bootstrap does nothing for them.
func (a *App) Bootstrap(ctx context.Context) (key string, created bool, err error) {
	if a.cfg.Store != StoreBolt {
		return "", false, nil
	}
	mark := filepath.Join(a.cfg.DataDir, bootstrapMark)
	if _, err := os.Stat(mark); err == nil {
		return "", false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("app: bootstrap marker: %w", err)
	}
	existing, err := a.Service.ListAPIKeys(ctx, DefaultProject)
	if err != nil {
		return "", false, fmt.Errorf("app: bootstrap: listing keys: %w", err)
	}
	if len(existing) == 0 {
		k, s, err := a.Service.CreateAPIKey(ctx, DefaultProject, bootstrapName, secrets.AllScopes)
		if err != nil {
			return "", false, fmt.Errorf("app: bootstrap: creating the first key: %w", err)
		}
		a.log.InfoContext(ctx, "created the first API key", "project", DefaultProject, "key_id", k.ID)
		key, created = s, true
	}
	if err := os.WriteFile(mark, []byte("bootstrapped\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("app: bootstrap marker: %w", err)
	}
	return key, created, nil
}

// readOrCreateKey reads a 32-byte key file, creating it (mode 0600) with
// random bytes if it does not exist.
func readOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return readOrCreateKey(path)
		}
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		return b, f.Close()
	}
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%s: want 32 bytes, have %d", path, len(b))
	}
	return b, nil
}
