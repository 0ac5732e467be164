package lambdatest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
	"go.yaml.in/yaml/v4"
)

// loadTemplate reads template.yaml into plain maps and lists. A CloudFormation
// short-form tag becomes its long form: !Ref X is {"Ref": X}, !GetAtt A.B is
// {"Fn::GetAtt": "A.B"}, !Sub s is {"Fn::Sub": s}.
func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lambdatest.ModuleRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	m, ok := fromNode(doc.Content[0]).(map[string]any)
	if !ok {
		t.Fatal("template.yaml is not a mapping")
	}
	return m
}

func fromNode(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = fromNode(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			l = append(l, fromNode(c))
		}
		v = l
	case yaml.AliasNode:
		return fromNode(n.Alias)
	default:
		v = n.Value
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		if name == "Ref" || name == "Condition" {
			return map[string]any{name: v}
		}
		return map[string]any{"Fn::" + name: v}
	}
	return v
}

// dig walks keys through nested maps.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("template: %s is not a mapping", k)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("template: no %s under %v", k, keys)
		}
	}
	return v
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// statement is one Allow statement of a function's inline policies.
type statement struct {
	Sid       string
	Actions   []string
	Condition map[string]any
	// resource is the statement's Resource as the template has it;
	// Resources the ARNs (or patterns) it names, once resolved.
	resource  any
	Resources []string
}

// resolved returns sts with their resources resolved: each Ref, Fn::GetAtt
// and ${...} of Fn::Sub replaced by vals (pseudo parameters, parameters,
// "Resource.Attribute"). A name vals lacks fails the test.
func resolved(t *testing.T, sts []statement, vals map[string]string) []statement {
	t.Helper()
	out := slices.Clone(sts)
	var res func(v any) []string
	res = func(v any) []string {
		switch x := v.(type) {
		case string:
			return []string{x}
		case []any:
			var l []string
			for _, e := range x {
				l = append(l, res(e)...)
			}
			return l
		case map[string]any:
			look := func(name string) string {
				val, ok := vals[name]
				if !ok {
					t.Fatalf("no value for %s in a statement's resource %v", name, v)
				}
				return val
			}
			if r, ok := x["Ref"].(string); ok {
				return []string{look(r)}
			}
			if g, ok := x["Fn::GetAtt"].(string); ok {
				return []string{look(g)}
			}
			if sub, ok := x["Fn::Sub"].(string); ok {
				for {
					i := strings.Index(sub, "${")
					if i < 0 {
						return []string{sub}
					}
					j := strings.Index(sub[i:], "}")
					sub = sub[:i] + look(sub[i+2:i+j]) + sub[i+j+1:]
				}
			}
		}
		t.Fatalf("a resource this evaluator cannot resolve: %v", v)
		return nil
	}
	for i := range out {
		if out[i].resource == nil {
			t.Fatalf("statement %s names no resource", out[i].Sid)
		}
		out[i].Resources = res(out[i].resource)
	}
	return out
}

// resourceMatches matches an ARN against an IAM resource pattern (* any
// run of characters, ? one).
func resourceMatches(pattern, arn string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	ok, _ := regexp.MatchString(re, arn)
	return ok
}

func functionStatements(t *testing.T, tmpl map[string]any, fn string) []statement {
	t.Helper()
	var out []statement
	for _, p := range dig(t, tmpl, "Resources", fn, "Properties", "Policies").([]any) {
		doc, ok := p.(map[string]any)
		if !ok {
			t.Fatalf("%s: only inline policy documents are expected, found %v", fn, p)
		}
		for _, s := range doc["Statement"].([]any) {
			sm := s.(map[string]any)
			if sm["Effect"] != "Allow" {
				continue
			}
			st := statement{Sid: fmt.Sprint(sm["Sid"]), Actions: strs(sm["Action"]), resource: sm["Resource"]}
			st.Condition, _ = sm["Condition"].(map[string]any)
			out = append(out, st)
		}
	}
	return out
}

func actions(sts []statement, prefix string) []string {
	var out []string
	for _, s := range sts {
		for _, a := range s.Actions {
			if strings.HasPrefix(a, prefix) {
				out = append(out, strings.TrimPrefix(a, prefix))
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// The table in template.yaml is the table pkg/store/dynamo creates.
func TestTemplateTableMatchesStore(t *testing.T) {
	tmpl := loadTemplate(t)
	props := dig(t, tmpl, "Resources", "Table", "Properties").(map[string]any)
	want := dynamo.TableSchema("x")
	attrs := map[string]string{}
	for _, a := range props["AttributeDefinitions"].([]any) {
		am := a.(map[string]any)
		attrs[am["AttributeName"].(string)] = am["AttributeType"].(string)
	}
	wantAttrs := map[string]string{}
	for _, a := range want.AttributeDefinitions {
		wantAttrs[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	if !reflect.DeepEqual(attrs, wantAttrs) {
		t.Errorf("AttributeDefinitions %v, the store's %v", attrs, wantAttrs)
	}
	var keys, wantKeys []string
	for _, k := range props["KeySchema"].([]any) {
		km := k.(map[string]any)
		keys = append(keys, km["AttributeName"].(string)+" "+km["KeyType"].(string))
	}
	for _, k := range want.KeySchema {
		wantKeys = append(wantKeys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("KeySchema %v, the store's %v", keys, wantKeys)
	}
	if props["BillingMode"] != string(want.BillingMode) {
		t.Errorf("BillingMode %v, the store's %v", props["BillingMode"], want.BillingMode)
	}
	if got := dig(t, props, "TimeToLiveSpecification", "AttributeName"); got != dynamo.TTLAttribute {
		t.Errorf("TTL attribute %v, the store's %s", got, dynamo.TTLAttribute)
	}
	for _, c := range [][2]any{
		{dig(t, props, "TimeToLiveSpecification", "Enabled"), "true"},
		{dig(t, props, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"), "true"},
		{props["DeletionProtectionEnabled"], "true"},
		{dig(t, tmpl, "Resources", "Key", "Properties", "EnableKeyRotation"), "true"},
	} {
		if c[0] != c[1] {
			t.Errorf("template: %v, want %v", c[0], c[1])
		}
	}
	if props["GlobalSecondaryIndexes"] != nil || props["LocalSecondaryIndexes"] != nil || want.GlobalSecondaryIndexes != nil {
		t.Errorf("indexes differ between the template and the store")
	}
}

// Every variable infra/env.json sets for `sam local` is declared on that
// function in the template (sam local ignores undeclared ones), and every
// function reads its configuration from the same variables.
func TestEnvJSONDeclaredInTemplate(t *testing.T) {
	tmpl := loadTemplate(t)
	raw, err := os.ReadFile(filepath.Join(lambdatest.ModuleRoot(t), "infra", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var envs map[string]map[string]string
	if err := json.Unmarshal(raw, &envs); err != nil {
		t.Fatal(err)
	}
	global := dig(t, tmpl, "Globals", "Function", "Environment", "Variables").(map[string]any)
	required := map[string][]string{
		"PublishFunction": {"MOBIUS_EVENT_BUS", "MOBIUS_LOG_LEVEL", "AWS_ENDPOINT_URL_EVENTBRIDGE"},
	}
	for _, fn := range []string{"ApiFunction", "ResolveFunction", "SweepFunction", "PublishFunction"} {
		declared := map[string]bool{}
		for k := range global {
			declared[k] = true
		}
		if env, ok := dig(t, tmpl, "Resources", fn, "Properties").(map[string]any)["Environment"].(map[string]any); ok {
			for k := range env["Variables"].(map[string]any) {
				declared[k] = true
			}
		}
		for _, section := range []string{"Parameters", fn} {
			for k := range envs[section] {
				if !declared[k] && (section == fn || fn == "ApiFunction") {
					t.Errorf("infra/env.json sets %s for %s, which the template does not declare", k, fn)
				}
			}
		}
		want, ok := required[fn]
		if !ok {
			want = []string{"MOBIUS_STORE", "MOBIUS_TABLE", "MOBIUS_KMS_KEY_ID", "MOBIUS_LOG_LEVEL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KMS"}
		}
		for _, k := range want {
			if !declared[k] {
				t.Errorf("%s does not declare %s", fn, k)
			}
		}
	}
	for k := range envs {
		if k != "Parameters" && dig(t, tmpl, "Resources").(map[string]any)[k] == nil {
			t.Errorf("infra/env.json has a section for %s, which the template does not define", k)
		}
	}
	if global["MOBIUS_STORE"] != "dynamodb" {
		t.Errorf("MOBIUS_STORE = %v", global["MOBIUS_STORE"])
	}
}

// TestTemplatePoliciesMatchCode runs a workout of the HTTP API, a resolve,
// the sweep and the publisher against moto and evaluates every request
// each function made (DynamoDB, KMS, EventBridge, and for the publisher
// what its event source mapping does with its role: reading the table's
// stream, describing a failed batch in the dead-letter queue) against that
// function's statements in template.yaml (its role's policy and, for KMS,
// the key policy), resources included: every request is allowed, and
// every statement's action is used. Then it evaluates what each must never
// do: the resolve function rewrite or delete a version, a ciphertext, a
// secret, a grant or an API key, or touch the audit other than by adding
// to it; the sweep touch keys, API keys or the audit; the publisher read
// the table or reach another stream, bus or queue.
func TestTemplatePoliciesMatchCode(t *testing.T) {
	ctx := context.Background()
	tmpl := loadTemplate(t)

	moto := awstest.StartMoto(t)
	suffix := strings.ToLower(secrets.NewULID(time.Now(), nil))
	table := "policies-" + suffix
	if err := dynamo.CreateTable(ctx, awstest.NewDynamoClient(moto), table); err != nil {
		t.Fatal(err)
	}
	// The stream first, so that it holds every write of the workout.
	streamARN, err := awstest.EnableStream(ctx, awstest.NewDynamoClient(moto), table, ddbtypes.StreamViewTypeNewImage)
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := awstest.CreateKMSKey(ctx, awstest.NewKMSClient(moto))
	if err != nil {
		t.Fatal(err)
	}
	bus, _ := busWithQueue(t, moto, suffix)
	sq := awstest.NewSQSClient(moto)
	dlq, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq-" + suffix)})
	if err != nil {
		t.Fatal(err)
	}
	tableARN := "arn:aws:dynamodb:" + awstest.Region + ":" + motoAccount + ":table/" + table
	vals := map[string]string{"AWS::Partition": "aws", "AWS::Region": awstest.Region, "AWS::AccountId": motoAccount,
		"Table.Arn": tableARN, "Table.StreamArn": streamARN, "EventBusName": bus,
		"PublishDeadLetterQueue.Arn": queueARN(aws.ToString(dlq.QueueUrl))}
	apiSt := resolved(t, append(functionStatements(t, tmpl, "ApiFunction"), keyPolicyStatements(t, tmpl, "ApiFunctionRole")...), vals)
	resSt := resolved(t, append(functionStatements(t, tmpl, "ResolveFunction"), keyPolicyStatements(t, tmpl, "ResolveFunctionRole")...), vals)
	sweepSt := resolved(t, append(functionStatements(t, tmpl, "SweepFunction"), keyPolicyStatements(t, tmpl, "SweepFunctionRole")...), vals)
	pubSt := resolved(t, append(functionStatements(t, tmpl, "PublishFunction"), keyPolicyStatements(t, tmpl, "PublishFunctionRole")...), vals)

	rec := requests{resources: map[string]string{"dynamodb": tableARN, "kms": "arn:aws:kms:" + awstest.Region + ":" + motoAccount + ":key/" + keyID}}
	ddb := awstest.NewDynamoClient(moto, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, rec.Middleware) })
	kc := awstest.NewKMSClient(moto, func(o *awskms.Options) { o.APIOptions = append(o.APIOptions, rec.Middleware) })
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	newSvc := func(mode secrets.KeyCheckMode) *secrets.Service {
		return secrets.NewService(dynamo.New(ddb, table), kms.New(kc, keyID), secrets.Options{Logger: logger, KeyCheck: mode})
	}
	api := newSvc(secrets.KeyCheckInit)
	// A workout of the HTTP API, on a new table (the key check is written
	// into it first).
	_, key, err := api.CreateAPIKey(ctx, "acme", "admin", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewHandler(api, httpapi.Options{Logger: logger}))
	defer srv.Close()
	do := func(method, p, body string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+p, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	base := "/v1/projects/acme"
	steps := []struct {
		method, path, body string
		want               int
		hdr                []string
	}{
		{"POST", base + "/secrets", `{"name":"s1","values":{"k":"v1"},"previous_grace_seconds":60}`, 201, []string{"Idempotency-Key", "idem-1"}},
		{"POST", base + "/secrets", `{"name":"s1","values":{"k":"v1"},"previous_grace_seconds":60}`, 201, []string{"Idempotency-Key", "idem-1"}},
		{"GET", base + "/secrets?limit=1", "", 200, nil},
		{"GET", base + "/secrets/s1", "", 200, nil},
		{"PATCH", base + "/secrets/s1", `{"values":{"k":"v2"},"description":"d"}`, 200, nil},
		{"PATCH", base + "/secrets/s1", `{"values":{"k":"v3"},"stage":"PENDING"}`, 200, nil},
		{"POST", base + "/secrets/s1/versions/3/promote", "", 200, nil},
		{"PATCH", base + "/secrets/s1", `{"name":"s2"}`, 200, nil},
		{"GET", base + "/secrets/s2/versions", "", 200, nil},
		{"GET", base + "/secrets/s2/versions/current", "", 200, nil},
		{"POST", base + "/secrets/s2/versions/1/enable", "", 200, nil},
		{"POST", base + "/secrets/s2/versions/2/disable", "", 200, nil},
		{"POST", base + "/secrets/s2/versions/2/destroy", "", 200, nil},
		{"DELETE", base + "/secrets/s2/aliases/s1", "", 200, nil},
		{"GET", base + "/secrets/s2/resolutions", "", 200, nil},
		{"GET", base + "/secrets/s2/consumers", "", 200, nil},
		{"POST", base + "/api-keys", `{"name":"k2","scopes":["secrets:read"]}`, 201, nil},
		{"GET", base + "/api-keys", "", 200, nil},
		{"DELETE", base + "/secrets/s2", "", 204, nil},
		{"POST", base + "/secrets", `{"name":"s3","values":{"k":"v"}}`, 201, nil},
		{"PATCH", base + "/secrets/s3", `{"rotate_by":"` + time.Now().Add(12*time.Hour).UTC().Format(time.RFC3339) + `"}`, 200, nil},
		{"POST", base + "/resolve-grants", `{"secrets":["s3"],"run":{"run_id":"r"}}`, 201, nil},
		{"GET", base + "/resolve-grants", "", 200, nil},
	}
	var grant string
	for _, s := range steps {
		got, body := do(s.method, s.path, s.body, s.hdr...)
		if got != s.want {
			t.Fatalf("%s %s: %d, want %d: %s", s.method, s.path, got, s.want, body)
		}
		if strings.HasSuffix(s.path, "/resolve-grants") && s.method == "POST" {
			var g struct{ Grant string }
			json.Unmarshal([]byte(body), &g)
			grant = g.Grant
		}
	}
	keys, err := api.ListAPIKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "k2" {
			if got, _ := do("DELETE", base+"/api-keys/"+k.ID, ""); got != 204 {
				t.Fatal("revoking a key failed")
			}
		}
	}
	apiReqs := rec.Take()
	checkPolicy(t, "ApiFunction", apiReqs, apiSt)

	// A resolve, by a fresh process (so that it reads and unwraps what a
	// cold function does).
	r := resolve.New(newSvc(secrets.KeyCheckVerify), logger)
	if _, err := r.Resolve(ctx, resolve.Event{Grant: grant, Input: json.RawMessage(`["${secret:s3.k}","${secret:s3.k@1}"]`), Step: json.RawMessage(`{"step":"s"}`)}); err != nil {
		t.Fatal(err)
	}
	resReqs := rec.Take()
	checkPolicy(t, "ResolveFunction", resReqs, resSt)
	wrote := false
	for _, q := range resReqs {
		wrote = wrote || q.action == "dynamodb:PutItem"
	}
	if !wrote {
		t.Error("the resolve wrote no audit item")
	}

	// What the resolve function's role must never be allowed, whatever
	// the request.
	s3, err := api.GetSecret(ctx, "acme", "s3")
	if err != nil {
		t.Fatal(err)
	}
	secretID := s3.ID
	vk := secrets.VersionItemKey("acme", secretID, 1)
	ck := secrets.CiphertextItemKey("acme", secretID, 1)
	sk := secrets.SecretItemKey("acme", secretID)
	attrs := []string{"PK", "SK", "v", "rev", "exp", "expires_at"}
	for _, q := range []request{
		{action: "dynamodb:PutItem", pk: vk.Partition, attrs: attrs},
		{action: "dynamodb:PutItem", pk: ck.Partition, attrs: attrs},
		{action: "dynamodb:PutItem", pk: sk.Partition, attrs: attrs},
		{action: "dynamodb:PutItem", pk: "K#" + strings.Repeat("0", 64), attrs: attrs},
		{action: "dynamodb:PutItem", pk: "M", attrs: attrs},
		{action: "dynamodb:DeleteItem", pk: vk.Partition},
		{action: "dynamodb:DeleteItem", pk: ck.Partition},
		{action: "dynamodb:DeleteItem", pk: "A#acme#" + secretID + "#0"},
		{action: "dynamodb:UpdateItem", pk: vk.Partition, attrs: attrs},
		{action: "dynamodb:UpdateItem", pk: "A#acme#" + secretID + "#0", attrs: attrs},
		{action: "dynamodb:BatchWriteItem", pk: vk.Partition, attrs: attrs},
		{action: "dynamodb:BatchWriteItem", pk: "A#acme#" + secretID + "#0", attrs: attrs},
		{action: "dynamodb:PutItem", pk: "A#acme#" + secretID + "#0", attrs: append(attrs, "ct")},
		{action: "dynamodb:Scan"},
		{action: "dynamodb:Query", pk: "A#acme#" + secretID + "#0"},
		{action: "kms:GenerateDataKey", context: secrets.EncryptionContext("acme", secretID, 9)},
		{action: "kms:Decrypt", context: map[string]string{"purpose": "something else"}},
	} {
		if allowed(q, resSt) {
			t.Errorf("the resolve function's policy allows %s on %q %v %v", q.action, q.pk, q.attrs, q.context)
		}
	}
	// And the API never decrypts a version.
	if q := (request{action: "kms:Decrypt", context: secrets.EncryptionContext("acme", secretID, 1)}); allowed(q, apiSt) {
		t.Error("the API's policy allows decrypting a version's data key")
	}

	// The sweep, by a fresh process: the reminder of s3's rotation date
	// (due at once), then, eight days on, the purge of s2 (deleted above).
	sw := newSvc(secrets.KeyCheckOff) // as functions/sweep runs it
	if rep, err := sw.Sweep(ctx, time.Now()); err != nil || rep.Reminders != 1 {
		t.Fatalf("sweep: %+v, %v", rep, err)
	}
	if rep, err := sw.Sweep(ctx, time.Now().Add(8*24*time.Hour)); err != nil || rep.Purged != 1 {
		t.Fatalf("sweep eight days on: %+v, %v", rep, err)
	}
	checkPolicy(t, "SweepFunction", rec.Take(), sweepSt)
	for _, q := range []request{
		{action: "dynamodb:PutItem", pk: "K#" + strings.Repeat("0", 64), attrs: attrs},
		{action: "dynamodb:PutItem", pk: "M", attrs: attrs},
		{action: "dynamodb:PutItem", pk: "A#acme#" + secretID + "#0", attrs: attrs},
		{action: "dynamodb:DeleteItem", pk: "A#acme#" + secretID + "#0"},
		{action: "dynamodb:DeleteItem", pk: "K#" + strings.Repeat("0", 64)},
		{action: "dynamodb:DeleteItem", pk: "E#acme"},
		{action: "dynamodb:PutItem", pk: "P#acme", attrs: append(attrs, "ct")},
		{action: "dynamodb:GetItem", pk: "K#" + strings.Repeat("0", 64)},
		{action: "dynamodb:UpdateItem", pk: "P#acme", attrs: attrs},
		{action: "dynamodb:Scan"},
		{action: "kms:Decrypt", context: secrets.EncryptionContext("acme", secretID, 1)},
		{action: "kms:Decrypt", context: map[string]string{"purpose": "mobius service key"}},
		{action: "kms:GenerateDataKey", context: secrets.EncryptionContext("acme", secretID, 9)},
	} {
		if allowed(q, sweepSt) {
			t.Errorf("the sweep's policy allows %s on %q %v %v", q.action, q.pk, q.attrs, q.context)
		}
	}

	// The publisher, under the emulator, on the stream of the whole
	// workout: what Lambda's event source mapping does with its role
	// (reading the stream; describing a batch it gives up on in the
	// dead-letter queue, here a damaged event item's) and what the
	// function does (PutEvents on the bus).
	if _, err := awstest.NewDynamoClient(moto).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
		"PK": &ddbtypes.AttributeValueMemberS{Value: "E#acme"}, "SK": &ddbtypes.AttributeValueMemberS{Value: "evt_damaged"},
		"v": &ddbtypes.AttributeValueMemberB{Value: []byte("{")}, "rev": &ddbtypes.AttributeValueMemberN{Value: "1"},
	}}); err != nil {
		t.Fatal(err)
	}
	proxy := startEventsProxy(t, moto)
	pubEnv := setEnv(lambdatest.FunctionEnv(t, "PublishFunction", moto, awstest.Region),
		"MOBIUS_EVENT_BUS="+bus, "AWS_ENDPOINT_URL_EVENTBRIDGE="+proxy.URL, "MOBIUS_AWS_ATTEMPT_TIMEOUT=20s")
	fn := lambdatest.Start(t, bootstrap(t, "./functions/publish"), pubEnv)
	onCall := func(action, resource string) {
		if resource == "" {
			resource = streamARN // ListStreams names the table's streams
		}
		rec.add(request{action: action, resource: resource})
	}
	pl := &poller{t: t, sr: &awstest.StreamReader{Endpoint: moto, Table: table, OnCall: onCall}, fn: fn, pattern: filterPattern(t),
		sqs: sq, dlq: aws.ToString(dlq.QueueUrl), dlqARN: vals["PublishDeadLetterQueue.Arn"], streamARN: streamARN, onSend: onCall}
	pl.deliver(pl.read())
	for _, call := range proxy.takeCalls() {
		rec.add(request{action: "events:PutEvents", resource: "arn:aws:events:" + awstest.Region + ":" + motoAccount + ":event-bus/" + fmt.Sprint(call[0]["EventBusName"])})
	}
	checkPolicy(t, "PublishFunction", rec.Take(), pubSt)
	for _, q := range []request{
		{action: "dynamodb:GetItem", resource: tableARN},
		{action: "dynamodb:Query", resource: tableARN},
		{action: "dynamodb:Scan", resource: tableARN},
		{action: "dynamodb:PutItem", resource: tableARN},
		{action: "dynamodb:GetRecords", resource: "arn:aws:dynamodb:" + awstest.Region + ":" + motoAccount + ":table/another/stream/2030-01-01T00:00:00.000"},
		{action: "events:PutEvents", resource: "arn:aws:events:" + awstest.Region + ":" + motoAccount + ":event-bus/another"},
		{action: "sqs:SendMessage", resource: queueARN("another")},
		{action: "kms:Decrypt", context: map[string]string{"purpose": "mobius service key"}},
	} {
		if allowed(q, pubSt) {
			t.Errorf("the publisher's policy allows %s on %s", q.action, q.resource)
		}
	}
}

// request is one DynamoDB or KMS request as IAM authorizes it: its action
// (an item of a transaction counts as the action of its kind), the
// partition key it names (dynamodb:LeadingKeys), the attributes it writes
// (dynamodb:Attributes) and its encryption context.
type request struct {
	action   string
	pk       string
	attrs    []string
	context  map[string]string
	resource string // the ARN it names; "" where the check does not care
}

// requests records the requests of the clients it is added to, each
// naming the resource of its service in resources ("dynamodb" the table's
// ARN, "kms" the key's).
type requests struct {
	mu        sync.Mutex
	list      []request
	resources map[string]string
}

// add records qs as they are.
func (r *requests) add(qs ...request) {
	r.mu.Lock()
	r.list = append(r.list, qs...)
	r.mu.Unlock()
}

func pkOf(m map[string]ddbtypes.AttributeValue) string {
	if v, ok := m[dynamo.PartitionKey].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func attrsOf(m map[string]ddbtypes.AttributeValue) []string {
	var out []string
	for a := range m {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (r *requests) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("requests",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			var qs []request
			switch p := in.Parameters.(type) {
			case *dynamodb.GetItemInput:
				qs = append(qs, request{action: "dynamodb:GetItem", pk: pkOf(p.Key)})
			case *dynamodb.BatchGetItemInput:
				for _, ka := range p.RequestItems {
					for _, k := range ka.Keys {
						qs = append(qs, request{action: "dynamodb:BatchGetItem", pk: pkOf(k)})
					}
				}
			case *dynamodb.PutItemInput:
				qs = append(qs, request{action: "dynamodb:PutItem", pk: pkOf(p.Item), attrs: attrsOf(p.Item)})
			case *dynamodb.DeleteItemInput:
				qs = append(qs, request{action: "dynamodb:DeleteItem", pk: pkOf(p.Key)})
			case *dynamodb.QueryInput:
				pk := ""
				for _, v := range p.ExpressionAttributeValues {
					if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok && pk == "" {
						pk = s.Value
					}
				}
				qs = append(qs, request{action: "dynamodb:Query", pk: pk})
			case *dynamodb.ScanInput:
				qs = append(qs, request{action: "dynamodb:Scan"})
			case *dynamodb.TransactWriteItemsInput:
				for _, it := range p.TransactItems {
					switch {
					case it.Put != nil:
						qs = append(qs, request{action: "dynamodb:PutItem", pk: pkOf(it.Put.Item), attrs: attrsOf(it.Put.Item)})
					case it.Delete != nil:
						qs = append(qs, request{action: "dynamodb:DeleteItem", pk: pkOf(it.Delete.Key)})
					case it.Update != nil:
						qs = append(qs, request{action: "dynamodb:UpdateItem", pk: pkOf(it.Update.Key)})
					case it.ConditionCheck != nil:
						qs = append(qs, request{action: "dynamodb:ConditionCheckItem", pk: pkOf(it.ConditionCheck.Key)})
					}
				}
			case *awskms.GenerateDataKeyInput:
				qs = append(qs, request{action: "kms:GenerateDataKey", context: p.EncryptionContext})
			case *awskms.DecryptInput:
				qs = append(qs, request{action: "kms:Decrypt", context: p.EncryptionContext})
			default:
				qs = append(qs, request{action: fmt.Sprintf("unrecorded %T", p)})
			}
			r.mu.Lock()
			for i := range qs {
				qs[i].resource = r.resources[qs[i].action[:strings.Index(qs[i].action+":", ":")]]
			}
			r.list = append(r.list, qs...)
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// Take returns the requests recorded since the last Take, and forgets them.
func (r *requests) Take() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.list
	r.list = nil
	return out
}

// checkPolicy fails for every request the statements do not allow, and for
// every DynamoDB action the statements allow that no request used.
func checkPolicy(t *testing.T, fn string, reqs []request, sts []statement) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatalf("%s: no request was recorded", fn)
	}
	used := map[string]bool{}
	for _, q := range reqs {
		used[q.action] = true
		if !allowed(q, sts) {
			t.Errorf("%s makes %s on %q (resource %q, attributes %v, context %v), which its statements do not allow", fn, q.action, q.pk, q.resource, q.attrs, q.context)
		}
	}
	for _, s := range sts {
		for _, a := range s.Actions {
			if !used[a] {
				t.Errorf("%s may %s (statement %s), which it never does", fn, a, s.Sid)
			}
		}
	}
}

// allowed evaluates q against Allow statements as IAM does for the
// condition operators the template uses.
func allowed(q request, sts []statement) bool {
	for _, s := range sts {
		if slices.Contains(s.Actions, q.action) && conditionsHold(q, s.Condition) &&
			(q.resource == "" || slices.ContainsFunc(s.Resources, func(p string) bool { return resourceMatches(p, q.resource) })) {
			return true
		}
	}
	return false
}

func conditionsHold(q request, cond map[string]any) bool {
	for op, body := range cond {
		for key, val := range body.(map[string]any) {
			want := strs(val)
			var got []string
			switch {
			case key == "dynamodb:LeadingKeys":
				got = []string{q.pk}
			case key == "dynamodb:Attributes":
				got = q.attrs
			case key == "kms:EncryptionContextKeys":
				for k := range q.context {
					got = append(got, k)
				}
			case strings.HasPrefix(key, "kms:EncryptionContext:"):
				v, ok := q.context[strings.TrimPrefix(key, "kms:EncryptionContext:")]
				if !ok {
					return false
				}
				got = []string{v}
			default:
				return false // an operator this evaluator does not know holds nothing
			}
			match := func(g string) bool {
				for _, w := range want {
					if op == "ForAllValues:StringLike" {
						if m, _ := path.Match(w, g); m {
							return true
						}
					} else if g == w {
						return true
					}
				}
				return false
			}
			switch op {
			case "ForAllValues:StringLike", "ForAllValues:StringEquals", "StringEquals":
				for _, g := range got {
					if !match(g) {
						return false
					}
				}
				if op == "StringEquals" && len(got) == 0 {
					return false
				}
			case "Null":
				if (len(got) == 0) != (fmt.Sprint(val) == "true") {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// keyPolicyStatements are the Allow statements of the KMS key's policy
// whose principal is the role roleID (a logical ID), as statements.
func keyPolicyStatements(t *testing.T, tmpl map[string]any, roleID string) []statement {
	t.Helper()
	var out []statement
	for _, s := range dig(t, tmpl, "Resources", "Key", "Properties", "KeyPolicy", "Statement").([]any) {
		sm, ok := s.(map[string]any)
		if !ok || sm["Effect"] != "Allow" {
			continue
		}
		role := map[string]any{"Fn::GetAtt": roleID + ".Arn"}
		p, _ := sm["Principal"].(map[string]any)
		names := p["AWS"]
		if l, ok := names.([]any); ok {
			if !slices.ContainsFunc(l, func(e any) bool { return reflect.DeepEqual(e, role) }) {
				continue
			}
		} else if !reflect.DeepEqual(names, role) {
			continue
		}
		st := statement{Sid: fmt.Sprint(sm["Sid"]), Actions: strs(sm["Action"]), resource: sm["Resource"]}
		st.Condition, _ = sm["Condition"].(map[string]any)
		out = append(out, st)
	}
	return out
}

// cfn-lint (what `sam validate --lint` runs) finds nothing in the template,
// nor in the CloudFormation that the SAM transform makes of it, where
// rules about generated resources apply (W3037 flags an action no IAM
// service has, such as dynamodb:TransactWriteItems).
func TestTemplateLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH; install it with: pip install 'cfn-lint==1.51.0'")
	}
	t.Run("template.yaml", func(t *testing.T) {
		cmd := exec.Command(bin, "template.yaml")
		cmd.Dir = lambdatest.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
		}
	})
	t.Run("transformed", func(t *testing.T) {
		out := transformedPath(t)
		cmd := exec.Command(bin, out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cfn-lint on the transformed template: %v\n%s", err, b)
		}
	})
}

// transformedPath translates template.yaml with the SAM translator
// (testdata/sam-translate.py, samtranslator as installed with cfn-lint)
// into a JSON file of the test's and returns its path.
func transformedPath(t *testing.T) string {
	t.Helper()
	root := lambdatest.ModuleRoot(t)
	out := filepath.Join(t.TempDir(), "template.json")
	cmd := exec.Command("python3", filepath.Join(root, "pkg", "internal", "lambdatest", "testdata", "sam-translate.py"),
		filepath.Join(root, "template.yaml"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("translating template.yaml (samtranslator comes with cfn-lint): %v\n%s", err, b)
	}
	return out
}

// transformed is template.yaml as the SAM transform makes it.
func transformed(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(transformedPath(t))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
