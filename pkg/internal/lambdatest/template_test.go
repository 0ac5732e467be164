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
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
	"gopkg.in/yaml.v3"
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
			st := statement{Sid: fmt.Sprint(sm["Sid"]), Actions: strs(sm["Action"])}
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
	for _, fn := range []string{"ApiFunction", "ResolveFunction"} {
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
		for _, k := range []string{"MOBIUS_STORE", "MOBIUS_TABLE", "MOBIUS_KMS_KEY_ID", "MOBIUS_LOG_LEVEL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KMS"} {
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

// The functions' IAM policies allow what the code does, and no more:
// the API's DynamoDB actions cover every operation a full workout of the
// HTTP API makes and name only operations the store can call; it may
// generate data keys but never decrypt. The resolve function may make
// exactly the operations a resolve makes (one batched read, the audit
// write), decrypt, and write only items shaped like audit records.
func TestTemplatePoliciesMatchCode(t *testing.T) {
	ctx := context.Background()
	tmpl := loadTemplate(t)
	apiSt := functionStatements(t, tmpl, "ApiFunction")
	resSt := functionStatements(t, tmpl, "ResolveFunction")

	// The store's possible operations: the methods of dynamo.API.
	possible := map[string]bool{}
	apiType := reflect.TypeOf((*dynamo.API)(nil)).Elem()
	for i := 0; i < apiType.NumMethod(); i++ {
		possible[apiType.Method(i).Name] = true
	}
	for _, a := range actions(apiSt, "dynamodb:") {
		if !possible[a] {
			t.Errorf("ApiFunction may dynamodb:%s, which the store never calls", a)
		}
	}

	moto := awstest.StartMoto(t)
	var calls awstest.Counter
	count := func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, calls.Middleware) }
	countKMS := func(o *awskms.Options) { o.APIOptions = append(o.APIOptions, calls.Middleware) }
	ddb := awstest.NewDynamoClient(moto, count)
	table := "policies-" + strings.ToLower(secrets.NewULID(time.Now(), nil))
	if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	kc := awstest.NewKMSClient(moto, countKMS)
	keyID, err := awstest.CreateKMSKey(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc := secrets.NewService(dynamo.New(ddb, table), kms.New(kc, keyID), secrets.Options{Logger: logger})
	_, key, err := svc.CreateAPIKey(ctx, "acme", "admin", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}

	// A workout of the HTTP API.
	calls.Reset()
	srv := httptest.NewServer(httpapi.NewHandler(svc, httpapi.Options{Logger: logger}))
	defer srv.Close()
	do := func(method, p, body string, hdr ...string) int {
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
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	base := "/v1/projects/acme"
	steps := []struct {
		method, path, body string
		want               int
		hdr                []string
	}{
		{"POST", base + "/secrets", `{"name":"s1","values":{"k":"v1"}}`, 201, []string{"Idempotency-Key", "idem-1"}},
		{"POST", base + "/secrets", `{"name":"s1","values":{"k":"v1"}}`, 201, []string{"Idempotency-Key", "idem-1"}},
		{"GET", base + "/secrets?limit=1", "", 200, nil},
		{"GET", base + "/secrets/s1", "", 200, nil},
		{"PATCH", base + "/secrets/s1", `{"values":{"k":"v2"},"description":"d"}`, 200, nil},
		{"PATCH", base + "/secrets/s1", `{"name":"s2"}`, 200, nil},
		{"GET", base + "/secrets/s2/versions", "", 200, nil},
		{"GET", base + "/secrets/s2/versions/current", "", 200, nil},
		{"POST", base + "/secrets/s2/versions/1/enable", "", 200, nil},
		{"POST", base + "/secrets/s2/versions/2/disable", "", 200, nil},
		{"POST", base + "/secrets/s2/versions/2/destroy", "", 200, nil},
		{"GET", base + "/secrets/s2/resolutions", "", 200, nil},
		{"POST", base + "/api-keys", `{"name":"k2","scopes":["secrets:read"]}`, 201, nil},
		{"GET", base + "/api-keys", "", 200, nil},
		{"DELETE", base + "/secrets/s2", "", 204, nil},
		{"POST", base + "/secrets", `{"name":"s3","values":{"k":"v"}}`, 201, nil},
	}
	for _, s := range steps {
		if got := do(s.method, s.path, s.body, s.hdr...); got != s.want {
			t.Fatalf("%s %s: %d, want %d", s.method, s.path, got, s.want)
		}
	}
	keys, err := svc.ListAPIKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "k2" && do("DELETE", base+"/api-keys/"+k.ID, "") != 204 {
			t.Fatal("revoking a key failed")
		}
	}
	checkAllowed(t, "ApiFunction", calls.Counts(), apiSt, false)
	if got := actions(apiSt, "kms:"); !reflect.DeepEqual(got, []string{"GenerateDataKey"}) {
		t.Errorf("ApiFunction's KMS actions %v, want only GenerateDataKey", got)
	}

	// A resolve.
	calls.Reset()
	r := resolve.New(svc, logger)
	if _, err := r.Resolve(ctx, resolve.Event{Project: "acme", Input: json.RawMessage(`["${secret:s3.k}"]`), Run: json.RawMessage(`{"run_id":"r"}`)}); err != nil {
		t.Fatal(err)
	}
	checkAllowed(t, "ResolveFunction", calls.Counts(), resSt, true)
	if got := actions(resSt, "kms:"); !reflect.DeepEqual(got, []string{"Decrypt"}) {
		t.Errorf("ResolveFunction's KMS actions %v, want only Decrypt", got)
	}

	// The audit items fit the resolve function's write condition.
	var allowedAttrs, leading []string
	for _, s := range resSt {
		if slices.Contains(s.Actions, "dynamodb:BatchWriteItem") {
			allowedAttrs = strs(dig(t, s.Condition, "ForAllValues:StringEquals", "dynamodb:Attributes"))
			leading = strs(dig(t, s.Condition, "ForAllValues:StringLike", "dynamodb:LeadingKeys"))
		}
	}
	out, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	audits := 0
	for _, it := range out.Items {
		sk := it[dynamo.SortKey].(*ddbtypes.AttributeValueMemberS).Value
		pk := it[dynamo.PartitionKey].(*ddbtypes.AttributeValueMemberS).Value
		isAudit := strings.HasPrefix(sk, "R#")
		fits := true
		for a := range it {
			if !slices.Contains(allowedAttrs, a) {
				fits = false
				if isAudit {
					t.Errorf("audit item attribute %q is not allowed by the resolve function's policy %v", a, allowedAttrs)
				}
			}
		}
		ok := false
		for _, pat := range leading {
			if m, _ := path.Match(pat, pk); m {
				ok = true
			}
		}
		if isAudit {
			audits++
			if !ok {
				t.Errorf("audit item partition %q matches none of %v", pk, leading)
			}
		} else if fits && ok {
			t.Errorf("the resolve function's write condition also admits the non-audit item %s/%s", pk, sk)
		}
	}
	if audits == 0 {
		t.Error("no audit item was written")
	}

	// Both functions' KMS conditions name the encryption context the
	// service binds data keys to.
	var ecKeys []string
	for k := range secrets.EncryptionContext("p", "s", 1) {
		ecKeys = append(ecKeys, k)
	}
	sort.Strings(ecKeys)
	for fn, sts := range map[string][]statement{"ApiFunction": apiSt, "ResolveFunction": resSt} {
		for _, s := range sts {
			if len(actions([]statement{s}, "kms:")) == 0 {
				continue
			}
			got := strs(dig(t, s.Condition, "ForAllValues:StringEquals", "kms:EncryptionContextKeys"))
			sort.Strings(got)
			if !reflect.DeepEqual(got, ecKeys) {
				t.Errorf("%s: kms:EncryptionContextKeys %v, the service's %v", fn, got, ecKeys)
			}
		}
	}
}

// checkAllowed fails for every observed DynamoDB or KMS operation the
// function's policy does not allow; with exact, also for every allowed
// DynamoDB action never observed.
func checkAllowed(t *testing.T, fn string, counts map[string]int, sts []statement, exact bool) {
	t.Helper()
	allowed := map[string]bool{}
	for _, s := range sts {
		for _, a := range s.Actions {
			allowed[a] = true
		}
	}
	seen := map[string]bool{}
	for op := range counts {
		svc, name, _ := strings.Cut(op, ".")
		var action string
		switch svc {
		case "DynamoDB":
			action = "dynamodb:" + name
		case "KMS":
			action = "kms:" + name
		default:
			continue
		}
		seen[action] = true
		if !allowed[action] {
			t.Errorf("%s calls %s, which its policy does not allow (calls: %v)", fn, action, counts)
		}
	}
	if exact {
		for a := range allowed {
			if strings.HasPrefix(a, "dynamodb:") && !seen[a] {
				t.Errorf("%s may %s, which it never calls", fn, a)
			}
		}
	}
	if len(seen) == 0 {
		t.Errorf("%s: no AWS call was counted", fn)
	}
}

// cfn-lint (what `sam validate --lint` runs) finds nothing in the template.
func TestTemplateLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH; install it with: pip install 'cfn-lint==1.51.0'")
	}
	cmd := exec.Command(bin, "template.yaml")
	cmd.Dir = lambdatest.ModuleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}
