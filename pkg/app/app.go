// Package app is the composition root: it reads the configuration, picks
// the store and the key wrapper, and builds the service and the HTTP
// handler that `mobius serve`, the CLI's admin commands and the Lambda
// functions share.
//
// Only cmd/ and functions/ import it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// The embedded store keeps expired items until the Sweep deletes them:
// its driver must list their partitions, or they would stay for good.
var _ secrets.PartitionLister = (*bolt.Driver)(nil)

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
	// DataKeyCacheTTL (MOBIUS_DATA_KEY_CACHE_TTL) is how long an unwrapped
	// data key is reused, on either store: the default (5 minutes) if zero,
	// no cache if negative (awsapp.DataKeyCacheDisabled).
	DataKeyCacheTTL time.Duration
	// IdempotencyLease (MOBIUS_IDEMPOTENCY_LEASE) is how long an
	// Idempotency-Key stays claimed by a request that never finished (its
	// server died): httpapi.DefaultIdempotencyLease if zero.
	IdempotencyLease time.Duration
}

// ConfigFromEnv reads MOBIUS_STORE, MOBIUS_DATA, MOBIUS_ADDR,
// MOBIUS_LOG_LEVEL, MOBIUS_DATA_KEY_CACHE_TTL and MOBIUS_IDEMPOTENCY_LEASE
// through getenv, and with MOBIUS_STORE=dynamodb what awsapp.ConfigFromEnv
// reads.
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
	if cfg.DataKeyCacheTTL, err = awsapp.DataKeyCacheTTL(getenv); err != nil {
		return Config{}, err
	}
	if cfg.IdempotencyLease, err = leaseFromEnv(getenv); err != nil {
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

// Bounds of MOBIUS_IDEMPOTENCY_LEASE: long enough for a request to finish,
// short enough that a retry after a crash does not wait for long.
const (
	minIdempotencyLease = time.Second
	maxIdempotencyLease = 10 * time.Minute
)

func leaseFromEnv(getenv func(string) string) (time.Duration, error) {
	v := strings.TrimSpace(getenv("MOBIUS_IDEMPOTENCY_LEASE"))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minIdempotencyLease || d > maxIdempotencyLease {
		return 0, fmt.Errorf("MOBIUS_IDEMPOTENCY_LEASE=%q: want a duration from %s to %s, e.g. 15s", v, minIdempotencyLease, maxIdempotencyLease)
	}
	return d, nil
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
	// Handler serves the HTTP API and, under /2015-03-31/, the Lambda
	// Invoke API of the resolve function (invoke.go).
	Handler http.Handler

	cfg     Config
	log     *slog.Logger
	closers []func() error
	// store is the embedded store's driver (nil on DynamoDB), for the
	// operator's socket (admin.go).
	store *bolt.Driver
}

// New opens the store and keys that cfg names, checks that the key is the
// one the store is sealed under, and builds the service and the handler.
// It refuses, with one line naming the file and what to do and having
// written nothing, a damaged data file, a missing or other key for a store
// that holds data, or a key file others can read. Close the App when done.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.Store == "" {
		cfg.Store = StoreBolt
	}
	a := &App{cfg: cfg, log: logger}
	switch cfg.Store {
	case StoreBolt:
		svc, st, err := openEmbedded(ctx, cfg, logger)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, st.Close)
		a.Service, a.store = svc, st
	case StoreDynamoDB:
		awsCfg := cfg.AWS
		if cfg.DataKeyCacheTTL != 0 {
			awsCfg.DataKeyCacheTTL = cfg.DataKeyCacheTTL
		}
		b, err := awsapp.Open(ctx, awsCfg, logger)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		a.Service = b.Service
		if err := a.Service.CheckKey(ctx, secrets.KeyCheckInit); err != nil {
			return nil, fmt.Errorf("table %s, KMS key %s: %s", cfg.AWS.Table, cfg.AWS.KMSKeyID, secrets.ErrorMessage(err))
		}
	default:
		return nil, fmt.Errorf("app: unknown store %q: want %q or %q", cfg.Store, StoreBolt, StoreDynamoDB)
	}
	if _, err := a.Service.ServiceKey(ctx, secrets.PurposePageToken); err != nil {
		a.Close()
		return nil, fmt.Errorf("app: page-token key: %s", secrets.ErrorMessage(err))
	}
	a.Handler = httpapi.NewHandler(a.Service, httpapi.Options{Logger: logger, IdempotencyLease: cfg.IdempotencyLease})
	a.Handler = withInvoke(a.Handler, a.Service, logger)
	return a, nil
}

// openEmbedded opens the data file and the key file under cfg.DataDir.
// Only an empty store may get a new key: a missing key file beside a data
// file that holds anything is refused, never replaced.
func openEmbedded(ctx context.Context, cfg Config, logger *slog.Logger) (*secrets.Service, *bolt.Driver, error) {
	if cfg.DataDir == "" {
		return nil, nil, errors.New("app: the embedded store needs a data folder (MOBIUS_DATA or --data)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("app: data folder: %w", err)
	}
	dataPath, keyPath := filepath.Join(cfg.DataDir, dataFileName), filepath.Join(cfg.DataDir, keyFileName)
	st, err := bolt.Open(dataPath, bolt.Options{})
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*secrets.Service, *bolt.Driver, error) {
		st.Close()
		return nil, nil, err
	}
	empty, err := st.Empty(ctx)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", dataPath, err))
	}
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) && !empty {
		return fail(fmt.Errorf("%s is missing, and %s holds data sealed under it: restore the key file kept with this data file (mobius admin backup writes both), or move the data file away to start an empty store; nothing was changed", keyPath, dataPath))
	}
	w, err := local.OpenFile(keyPath)
	if err != nil {
		return fail(err)
	}
	svc := secrets.NewService(st, w, awsapp.ServiceOptions(logger, cfg.DataKeyCacheTTL))
	if err := svc.CheckKey(ctx, secrets.KeyCheckInit); err != nil {
		if errors.Is(err, secrets.ErrKeyMismatch) {
			return fail(fmt.Errorf("%s does not open %s: %s", keyPath, dataPath, secrets.ErrorMessage(err)))
		}
		return fail(fmt.Errorf("%s: %s", dataPath, secrets.ErrorMessage(err)))
	}
	// Everything is checked: now zero what an interrupted erase left.
	if err := st.Scrub(); err != nil {
		return fail(fmt.Errorf("%s: %w", dataPath, err))
	}
	return svc, st, nil
}

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
