package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// New with MOBIUS_STORE=dynamodb reads the AWS SDK's own variables and
// serves the API on DynamoDB and KMS (here moto's).
func TestNewOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	ep := awstest.StartMoto(t)
	table := fmt.Sprintf("mobius-app-%d", time.Now().UnixNano())
	raw := awstest.NewDynamoClient(ep)
	if err := dynamo.CreateTable(ctx, raw, table); err != nil {
		t.Fatal(err)
	}
	keyID, err := awstest.CreateKMSKey(ctx, awstest.NewKMSClient(ep))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION": awstest.Region, "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret-test",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_DYNAMODB": ep, "AWS_ENDPOINT_URL_KMS": ep,
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
	cfg, err := ConfigFromEnv(env(map[string]string{"MOBIUS_STORE": "dynamodb", "MOBIUS_TABLE": table, "MOBIUS_KMS_KEY_ID": keyID}))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer a.Close()
	_, key, err := a.Service.CreateAPIKey(ctx, "acme", "test", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	const value = "app-dynamo-canary-4c1d"
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), value) {
			t.Fatalf("%s %s: the response holds the plaintext", method, path)
		}
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	code, created := do("POST", "/v1/projects/acme/secrets", `{"name":"db","values":{"password":"`+value+`"}}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	code, got := do("GET", "/v1/projects/acme/secrets/db", "")
	if code != http.StatusOK || got["id"] != created["id"] || got["current_version"] != float64(1) {
		t.Fatalf("get: %d %v", code, got)
	}
	rev, err := a.Service.Reveal(ctx, "acme", []string{"db"}, nil)
	if err != nil || rev["db"].Values["password"] != value {
		t.Fatalf("Reveal through KMS: %v", err)
	}
	// The writes went to MOBIUS_TABLE.
	res, err := raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]dynamoAttr{dynamo.PartitionKey: str("P#acme"), dynamo.SortKey: str("N#db")}})
	if err != nil || len(res.Item) == 0 {
		t.Fatalf("the secret is not in table %s: %v", table, err)
	}
	if strings.Contains(logs.String(), value) {
		t.Fatal("the log holds the plaintext")
	}
}

type dynamoAttr = dynamotypes.AttributeValue

func str(v string) dynamoAttr { return &dynamotypes.AttributeValueMemberS{Value: v} }
