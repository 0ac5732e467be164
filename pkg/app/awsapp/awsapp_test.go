package awsapp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{"MOBIUS_TABLE": "t", "MOBIUS_KMS_KEY_ID": "alias/k"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"minimal", base, Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit}, ""},
		{"store named", with("MOBIUS_STORE", "DynamoDB"), Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit}, ""},
		{"log level", with("MOBIUS_LOG_LEVEL", "debug"), Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit, LogLevel: slog.LevelDebug}, ""},
		{"other store", with("MOBIUS_STORE", "bolt"), Config{}, "DynamoDB only"},
		{"no table", map[string]string{"MOBIUS_KMS_KEY_ID": "k"}, Config{}, "MOBIUS_TABLE"},
		{"no key", map[string]string{"MOBIUS_TABLE": "t"}, Config{}, "MOBIUS_KMS_KEY_ID"},
		{"bad log level", with("MOBIUS_LOG_LEVEL", "loud"), Config{}, "MOBIUS_LOG_LEVEL"},
		{"deadline margin", with("MOBIUS_DEADLINE_MARGIN", "1500ms"), Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit, DeadlineMargin: 1500 * time.Millisecond}, ""},
		{"no deadline margin", with("MOBIUS_DEADLINE_MARGIN", "0s"), Config{}, "MOBIUS_DEADLINE_MARGIN"},
		{"deadline margin too long", with("MOBIUS_DEADLINE_MARGIN", "2m"), Config{}, "MOBIUS_DEADLINE_MARGIN"},
		{"deadline margin not a duration", with("MOBIUS_DEADLINE_MARGIN", "1"), Config{}, "MOBIUS_DEADLINE_MARGIN"},
		{"attempt timeout", with("MOBIUS_AWS_ATTEMPT_TIMEOUT", "750ms"), Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit, AttemptTimeout: 750 * time.Millisecond}, ""},
		{"attempt timeout too short", with("MOBIUS_AWS_ATTEMPT_TIMEOUT", "1ms"), Config{}, "MOBIUS_AWS_ATTEMPT_TIMEOUT"},
		{"data-key cache TTL", with("MOBIUS_DATA_KEY_CACHE_TTL", "90s"), Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit, DataKeyCacheTTL: 90 * time.Second}, ""},
		{"data-key cache off", with("MOBIUS_DATA_KEY_CACHE_TTL", "0"), Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit, DataKeyCacheTTL: DataKeyCacheDisabled}, ""},
		{"data-key cache TTL at most 5m", with("MOBIUS_DATA_KEY_CACHE_TTL", "5m1s"), Config{}, "MOBIUS_DATA_KEY_CACHE_TTL"},
		{"negative data-key cache TTL", with("MOBIUS_DATA_KEY_CACHE_TTL", "-1s"), Config{}, "MOBIUS_DATA_KEY_CACHE_TTL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ConfigFromEnv(env(c.env))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// awsEnv points the AWS SDK's own variables at ep, away from any profile
// of the machine.
func awsEnv(t *testing.T, ep, region string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION": region, "AWS_DEFAULT_REGION": "", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret-test",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_DYNAMODB": ep, "AWS_ENDPOINT_URL_KMS": ep,
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
}

func TestOpenNeedsARegion(t *testing.T) {
	awsEnv(t, "http://127.0.0.1:1", "")
	_, err := Open(context.Background(), Config{Table: "t", KMSKeyID: "k"}, nil)
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Fatalf("err %v, want one naming AWS_REGION", err)
	}
}

// Open builds the service on the table and key it is given (moto's here);
// two instances share the page-token service key, kept in the table.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	ep := awstest.StartMoto(t)
	awsEnv(t, ep, awstest.Region)
	table := fmt.Sprintf("mobius-awsapp-%d", time.Now().UnixNano())
	if err := dynamo.CreateTable(ctx, awstest.NewDynamoClient(ep), table); err != nil {
		t.Fatal(err)
	}
	keyID, err := awstest.CreateKMSKey(ctx, awstest.NewKMSClient(ep))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Table: table, KMSKeyID: keyID, KeyCheck: secrets.KeyCheckInit}
	b, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	k1, err := b.Service.ServiceKey(ctx, secrets.PurposePageToken)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := again.Service.ServiceKey(ctx, secrets.PurposePageToken)
	if err != nil || len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("two instances on one table: page-token keys differ or are missing (%v)", err)
	}

	const value = "awsapp-canary-7e2a"
	if _, err := b.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": value}}); err != nil {
		t.Fatal(err)
	}
	rev, err := again.Service.Reveal(ctx, "acme", []string{"db"}, nil)
	if err != nil || rev["db"].Values["password"] != value {
		t.Fatalf("Reveal through a second instance: %v", err)
	}
}

// The invocation's context ends the margin before the Lambda deadline.
func TestWithDeadlineMargin(t *testing.T) {
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	parent, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, c := range []struct {
		name   string
		margin time.Duration
		want   time.Time
	}{
		{"default", 0, deadline.Add(-DefaultDeadlineMargin)},
		{"configured", 2500 * time.Millisecond, deadline.Add(-2500 * time.Millisecond)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := WithDeadlineMargin(parent, c.margin)
			defer cancel()
			if got, ok := ctx.Deadline(); !ok || !got.Equal(c.want) {
				t.Errorf("deadline %v (%v), want %v", got, ok, c.want)
			}
		})
	}
	t.Run("no deadline", func(t *testing.T) {
		ctx, cancel := WithDeadlineMargin(context.Background(), time.Second)
		if _, ok := ctx.Deadline(); ok {
			t.Error("a deadline appeared")
		}
		cancel()
		if ctx.Err() == nil {
			t.Error("cancel did not end the context")
		}
	})
}

// A dependency that accepts connections and never answers costs each call
// MaxAttempts attempts of AttemptTimeout, then Unavailable; a context that
// ends first ends the call as Unavailable too.
func TestStalledDependency(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		stall string // which endpoint stalls: "dynamodb" or "kms"
	}{
		{"DynamoDB", "dynamodb"},
		{"KMS", "kms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			moto := awstest.StartMoto(t)
			stall := lambdatest.StartStaller(t)
			awsEnv(t, moto, awstest.Region)
			table := fmt.Sprintf("mobius-stall-%d", time.Now().UnixNano())
			if err := dynamo.CreateTable(ctx, awstest.NewDynamoClient(moto), table); err != nil {
				t.Fatal(err)
			}
			keyID, err := awstest.CreateKMSKey(ctx, awstest.NewKMSClient(moto))
			if err != nil {
				t.Fatal(err)
			}
			quiet := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
			healthy, err := Open(ctx, Config{Table: table, KMSKeyID: keyID}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := healthy.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}}); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AWS_ENDPOINT_URL_"+strings.ToUpper(c.stall), stall.URL)
			b, err := Open(ctx, Config{Table: table, KMSKeyID: keyID, AttemptTimeout: 200 * time.Millisecond}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			// The bound is the client's own: this context would wait 30s.
			waiting, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err = b.Service.Reveal(waiting, "acme", []string{"db"}, nil)
			if secrets.ErrorCode(err) != secrets.Unavailable {
				t.Fatalf("Reveal with %s stalled: %v, want Unavailable", c.stall, err)
			}
			if got := stall.Conns(); got != MaxAttempts {
				t.Errorf("the stalled %s saw %d attempts, want %d (one per attempt, each timed out)", c.stall, got, MaxAttempts)
			}
			// A context that ends before the attempts do ends the call.
			short, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := b.Service.Reveal(short, "acme", []string{"db"}, nil); secrets.ErrorCode(err) != secrets.Unavailable {
				t.Errorf("Reveal with an ended context: %v, want Unavailable", err)
			}
		})
	}
}

// MOBIUS_DATA_KEY_CACHE_TTL decides whether a warm instance keeps
// unwrapping with a key disabled in KMS: with the cache (default or
// configured) it does, for the TTL; with 0 every unwrap asks KMS, which
// refuses at once. local-kms refuses a disabled key as KMS does; DynamoDB
// is moto's.
func TestDataKeyCacheTTL(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		ttl        string
		keepsGoing bool
	}{
		{"default", "", true},
		{"one minute", "1m", true},
		{"disabled", "0", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			moto := awstest.StartMoto(t)
			kmsEP, keyID := awstest.StartLocalKMS(t)
			awsEnv(t, moto, awstest.Region)
			t.Setenv("AWS_ENDPOINT_URL_KMS", kmsEP)
			table := fmt.Sprintf("mobius-dekttl-%d", time.Now().UnixNano())
			if err := dynamo.CreateTable(ctx, awstest.NewDynamoClient(moto), table); err != nil {
				t.Fatal(err)
			}
			cfg, err := ConfigFromEnv(env(map[string]string{"MOBIUS_TABLE": table, "MOBIUS_KMS_KEY_ID": keyID, "MOBIUS_DATA_KEY_CACHE_TTL": c.ttl}))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Service.Reveal(ctx, "acme", []string{"db"}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := awstest.NewKMSClient(kmsEP).DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &keyID}); err != nil {
				t.Fatal(err)
			}
			rev, err := b.Service.Reveal(ctx, "acme", []string{"db"}, nil)
			switch {
			case c.keepsGoing && (err != nil || rev["db"].Values["k"] != "v"):
				t.Errorf("with the cache, Reveal after disabling the key: %v", err)
			case !c.keepsGoing && secrets.ErrorCode(err) != secrets.Misconfigured:
				t.Errorf("without the cache, Reveal after disabling the key: %v, want Misconfigured", err)
			}
		})
	}
}
