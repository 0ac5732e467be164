// Package awsapp is the composition root of the Lambda functions: the
// service on DynamoDB and KMS, configured from the environment. pkg/app
// uses it too, for `mobius serve` and the admin commands with
// MOBIUS_STORE=dynamodb.
//
// It imports pkg/secrets, the DynamoDB store, the KMS key wrapper and the
// AWS SDK, and nothing else of the product: neither bbolt nor the HTTP
// handler, so that the resolve function links only what it runs. The API
// function adds the handler itself.
//
// Every AWS client it builds bounds each attempt (AttemptTimeout) and its
// retries (MaxAttempts, MaxBackoff), and the functions bound each
// invocation to end DeadlineMargin before the Lambda deadline
// (WithDeadlineMargin), so a stalled dependency becomes Unavailable while
// the function can still answer, never a Lambda timeout.
package awsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/logging"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// Config locates the table and the key, and bounds the time spent on them.
// A zero duration means its default.
type Config struct {
	Table    string     // MOBIUS_TABLE: the DynamoDB table
	KMSKeyID string     // MOBIUS_KMS_KEY_ID: key ID, ARN or alias
	LogLevel slog.Level // MOBIUS_LOG_LEVEL

	// DeadlineMargin (MOBIUS_DEADLINE_MARGIN) is how long before the Lambda
	// deadline an invocation gives up on its dependencies, to answer
	// Unavailable in time; DefaultDeadlineMargin if zero.
	DeadlineMargin time.Duration
	// AttemptTimeout (MOBIUS_AWS_ATTEMPT_TIMEOUT) bounds one attempt of an
	// AWS call, connection included; DefaultAttemptTimeout if zero.
	AttemptTimeout time.Duration
	// DataKeyCacheTTL (MOBIUS_DATA_KEY_CACHE_TTL) is how long an unwrapped
	// data key is reused without asking KMS: the service's default (5
	// minutes) if zero, no cache if negative (DataKeyCacheDisabled).
	DataKeyCacheTTL time.Duration
	// KeyCheck is how the service checks, on the first request that needs
	// the key, that the KMS key is the one the table is sealed under:
	// KeyCheckInit (the default) for the API, which may write the check
	// into a new table; KeyCheckVerify for the resolve function, a reader.
	KeyCheck secrets.KeyCheckMode
}

// Defaults and bounds of the timing settings. One AWS call takes at most
// MaxAttempts attempts of AttemptTimeout each, with at most MaxBackoff
// between them: 3 × 2s + 2 × 1s = 8s by default, within the 15s function
// timeout less the 1s margin, so a stalled first call still leaves the
// invocation time to answer.
const (
	DefaultDeadlineMargin = time.Second
	MaxDeadlineMargin     = time.Minute
	DefaultAttemptTimeout = 2 * time.Second
	MinAttemptTimeout     = 100 * time.Millisecond
	MaxAttemptTimeout     = time.Minute
	MaxAttempts           = 3
	MaxBackoff            = time.Second

	// MaxDataKeyCacheTTL is the longest MOBIUS_DATA_KEY_CACHE_TTL: a key
	// disabled in KMS keeps unwrapping cached data keys this long per warm
	// container.
	MaxDataKeyCacheTTL = 5 * time.Minute
	// DataKeyCacheDisabled is Config.DataKeyCacheTTL for
	// MOBIUS_DATA_KEY_CACHE_TTL=0: every unwrap asks KMS.
	DataKeyCacheDisabled time.Duration = -1
)

// ConfigFromEnv reads MOBIUS_TABLE, MOBIUS_KMS_KEY_ID, MOBIUS_LOG_LEVEL,
// , MOBIUS_DEADLINE_MARGIN, MOBIUS_AWS_ATTEMPT_TIMEOUT and
// MOBIUS_DATA_KEY_CACHE_TTL through getenv. MOBIUS_STORE, if set, must say
// dynamodb: a function configured for another store fails at once.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if s := strings.ToLower(strings.TrimSpace(getenv("MOBIUS_STORE"))); s != "" && s != "dynamodb" {
		return Config{}, fmt.Errorf("MOBIUS_STORE=%q: this program runs on DynamoDB only; unset it or set it to \"dynamodb\"", s)
	}
	cfg := Config{Table: getenv("MOBIUS_TABLE"), KMSKeyID: getenv("MOBIUS_KMS_KEY_ID")}
	var err error
	if cfg.LogLevel, err = LogLevel(getenv); err != nil {
		return Config{}, err
	}
	if cfg.DeadlineMargin, err = duration(getenv, "MOBIUS_DEADLINE_MARGIN", time.Millisecond, MaxDeadlineMargin); err != nil {
		return Config{}, err
	}
	if cfg.AttemptTimeout, err = duration(getenv, "MOBIUS_AWS_ATTEMPT_TIMEOUT", MinAttemptTimeout, MaxAttemptTimeout); err != nil {
		return Config{}, err
	}
	if cfg.DataKeyCacheTTL, err = DataKeyCacheTTL(getenv); err != nil {
		return Config{}, err
	}
	if cfg.Table == "" {
		return Config{}, errors.New("MOBIUS_STORE=dynamodb needs MOBIUS_TABLE (the DynamoDB table name)")
	}
	if cfg.KMSKeyID == "" {
		return Config{}, errors.New("MOBIUS_STORE=dynamodb needs MOBIUS_KMS_KEY_ID (the KMS key that wraps data keys)")
	}
	cfg.KeyCheck = secrets.KeyCheckInit
	return cfg, nil
}

// LogLevel reads MOBIUS_LOG_LEVEL (debug, info, warn or error; info if
// unset).
func LogLevel(getenv func(string) string) (slog.Level, error) {
	var l slog.Level
	if v := getenv("MOBIUS_LOG_LEVEL"); v != "" {
		if err := l.UnmarshalText([]byte(v)); err != nil {
			return 0, fmt.Errorf("MOBIUS_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	return l, nil
}

// DataKeyCacheTTL reads MOBIUS_DATA_KEY_CACHE_TTL, a Go duration from 0
// (no cache: DataKeyCacheDisabled) to MaxDataKeyCacheTTL; unset is zero,
// the service's default.
func DataKeyCacheTTL(getenv func(string) string) (time.Duration, error) {
	v := strings.TrimSpace(getenv("MOBIUS_DATA_KEY_CACHE_TTL"))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxDataKeyCacheTTL {
		return 0, fmt.Errorf("MOBIUS_DATA_KEY_CACHE_TTL=%q: want a duration from 0 (no cache) to %s, e.g. 1m", v, MaxDataKeyCacheTTL)
	}
	if d == 0 {
		return DataKeyCacheDisabled, nil
	}
	return d, nil
}

// ServiceOptions are the service's options with logger and the data-key
// cache TTL of a Config (zero: the default; negative: no cache).
func ServiceOptions(logger *slog.Logger, dataKeyCacheTTL time.Duration) secrets.Options {
	o := secrets.Options{Logger: logger, DataKeyCacheTTL: dataKeyCacheTTL}
	if dataKeyCacheTTL < 0 {
		o.DataKeyCacheTTL, o.DataKeyCacheSize = 0, -1
	}
	return o
}

// duration reads the Go duration name, within [min, max]; 0 if unset.
func duration(getenv func(string) string, name string, min, max time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		return 0, fmt.Errorf("%s=%q: want a duration from %s to %s, e.g. 1s or 500ms", name, v, min, max)
	}
	return d, nil
}

// WithDeadlineMargin returns ctx bounded to end margin before ctx's own
// deadline (the Lambda deadline), so that a call still waiting on a
// dependency then fails as Unavailable while the function can answer;
// DefaultDeadlineMargin if margin is zero. Without a deadline, ctx is
// only made cancellable.
func WithDeadlineMargin(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	if margin <= 0 {
		margin = DefaultDeadlineMargin
	}
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-margin))
	}
	return context.WithCancel(ctx)
}

// awsOptions bound every AWS call: each attempt, its connection included,
// to attempt (DefaultAttemptTimeout if zero), MaxAttempts attempts with at
// most MaxBackoff between them; and send the SDK's own log lines to logger.
func awsOptions(attempt time.Duration, logger *slog.Logger) []func(*config.LoadOptions) error {
	if attempt <= 0 {
		attempt = DefaultAttemptTimeout
	}
	client := awshttp.NewBuildableClient().
		WithTimeout(attempt).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = attempt })
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = MaxAttempts
			o.MaxBackoff = MaxBackoff
		})
	}
	sdkLog := logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		logger.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
	})
	return []func(*config.LoadOptions) error{
		config.WithHTTPClient(client), config.WithRetryer(retryer), config.WithLogger(sdkLog),
	}
}

// LoadAWSConfig loads the AWS SDK's own configuration (AWS_REGION, the
// AWS_ENDPOINT_URL_* variables, credentials, profiles) for clients whose
// every call is bounded as Open's are: attempts of attempt each
// (DefaultAttemptTimeout if zero), MaxAttempts of them, MaxBackoff
// between them; the SDK's log lines go to logger. A configuration without
// a region is refused.
func LoadAWSConfig(ctx context.Context, attempt time.Duration, logger *slog.Logger) (aws.Config, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, awsOptions(attempt, logger)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return aws.Config{}, errors.New("the AWS configuration names no region; set AWS_REGION")
	}
	return awsCfg, nil
}

// Backend is the service on DynamoDB and KMS.
type Backend struct {
	Service *secrets.Service
}

// Open builds the DynamoDB store and the KMS key wrapper from the AWS SDK's
// own configuration (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_KMS, credentials, profiles) and the service on them.
// Every client bounds its attempts and retries (AttemptTimeout,
// MaxAttempts, MaxBackoff). It only builds clients: nothing is called over
// the network.
//
// The service keys (the page-token key, the resolve-grant key) are kept in
// the table, wrapped by the KMS key, and unwrapped on first use.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Backend, error) {
	if logger == nil {
		logger = slog.Default()
	}
	awsCfg, err := LoadAWSConfig(ctx, cfg.AttemptTimeout, logger)
	if err != nil {
		return nil, err
	}
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	keys := kms.New(awskms.NewFromConfig(awsCfg), cfg.KMSKeyID)
	return &Backend{
		Service: secrets.NewService(store, keys, withKeyCheck(ServiceOptions(logger, cfg.DataKeyCacheTTL), cfg.KeyCheck)),
	}, nil
}

func withKeyCheck(o secrets.Options, mode secrets.KeyCheckMode) secrets.Options {
	o.KeyCheck = mode
	return o
}

// Boot is how a Lambda function that serves through the service starts:
// its configuration from the environment with the key check mode given,
// the JSON logger (made the default too, so that the runtime's and every
// library's log lines are JSON records through it), and the backend. A
// function that cannot start logs why and exits 1, which Lambda reports
// as an init error.
func Boot(keyCheck secrets.KeyCheckMode) (Config, *slog.Logger, *Backend) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("configuration", "err", err.Error())
		os.Exit(1)
	}
	cfg.KeyCheck = keyCheck
	logger := NewLogger(os.Stderr, cfg.LogLevel)
	slog.SetDefault(logger)
	b, err := Open(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("starting", "err", err.Error())
		os.Exit(1)
	}
	return cfg, logger, b
}
