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

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	k32 := bytes.Repeat([]byte{0xab}, 32)
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
		{"minimal", base, Config{Table: "t", KMSKeyID: "alias/k"}, ""},
		{"store named", with("MOBIUS_STORE", "DynamoDB"), Config{Table: "t", KMSKeyID: "alias/k"}, ""},
		{"log level", with("MOBIUS_LOG_LEVEL", "debug"), Config{Table: "t", KMSKeyID: "alias/k", LogLevel: slog.LevelDebug}, ""},
		{"hex page-token key", with("MOBIUS_PAGE_TOKEN_KEY", strings.Repeat("ab", 32)), Config{Table: "t", KMSKeyID: "alias/k", PageTokenKey: k32}, ""},
		{"base64 page-token key", with("MOBIUS_PAGE_TOKEN_KEY", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="), Config{Table: "t", KMSKeyID: "alias/k", PageTokenKey: k32}, ""},
		{"raw base64 page-token key", with("MOBIUS_PAGE_TOKEN_KEY", " q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\n"), Config{Table: "t", KMSKeyID: "alias/k", PageTokenKey: k32}, ""},
		{"short page-token key", with("MOBIUS_PAGE_TOKEN_KEY", "abcd"), Config{}, "at least 16"},
		{"page-token key not encoded", with("MOBIUS_PAGE_TOKEN_KEY", "not a key!"), Config{}, "neither hex nor base64"},
		{"other store", with("MOBIUS_STORE", "bolt"), Config{}, "DynamoDB only"},
		{"no table", map[string]string{"MOBIUS_KMS_KEY_ID": "k"}, Config{}, "MOBIUS_TABLE"},
		{"no key", map[string]string{"MOBIUS_TABLE": "t"}, Config{}, "MOBIUS_KMS_KEY_ID"},
		{"bad log level", with("MOBIUS_LOG_LEVEL", "loud"), Config{}, "MOBIUS_LOG_LEVEL"},
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
// without a page-token key it derives one, stable for the table and key,
// and warns.
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
	cfg := Config{Table: table, KMSKeyID: keyID}
	var logs bytes.Buffer
	b, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "MOBIUS_PAGE_TOKEN_KEY is not set") {
		t.Error("no warning about the derived page-token key")
	}
	again, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.PageTokenKey) != 32 || !bytes.Equal(b.PageTokenKey, again.PageTokenKey) {
		t.Fatalf("derived page-token keys %x and %x: want one 32-byte key for one table and key", b.PageTokenKey, again.PageTokenKey)
	}
	other, err := Open(ctx, Config{Table: table + "-other", KMSKeyID: keyID}, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.PageTokenKey, b.PageTokenKey) {
		t.Fatal("two tables derive the same page-token key")
	}
	given := bytes.Repeat([]byte{7}, 32)
	logs.Reset()
	withKey, err := Open(ctx, Config{Table: table, KMSKeyID: keyID, PageTokenKey: given}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || !bytes.Equal(withKey.PageTokenKey, given) || logs.Len() != 0 {
		t.Fatalf("with a configured key: %x, %v, logs %q", withKey.PageTokenKey, err, logs.String())
	}

	const value = "awsapp-canary-7e2a"
	if _, err := b.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": value}}); err != nil {
		t.Fatal(err)
	}
	rev, err := again.Service.Reveal(ctx, "acme", []string{"db"})
	if err != nil || rev["db"].Values["password"] != value {
		t.Fatalf("Reveal through a second instance: %v", err)
	}
}
