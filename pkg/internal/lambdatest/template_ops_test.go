package lambdatest_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// iamActions reads testdata/iam-actions.txt: service:Action per line.
func iamActions(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "iam-actions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out[strings.ToLower(l)] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var actionShape = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9*?]+$`)

// namedActions returns every IAM action named under an Action or NotAction
// key anywhere in v, with where it was found.
func namedActions(v any, where string, out map[string][]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "Action" || k == "NotAction" {
				for _, a := range strs(e) {
					out[a] = append(out[a], where)
				}
				continue
			}
			namedActions(e, where+"/"+k, out)
		}
	case []any:
		for i, e := range x {
			namedActions(e, fmt.Sprintf("%s[%d]", where, i), out)
		}
	}
}

// Every IAM action the template names, and every one in its transformed
// form, is an action of its service (a wildcard must match one).
func TestTemplateIAMActions(t *testing.T) {
	known := iamActions(t)
	for name, tmpl := range map[string]map[string]any{"template.yaml": loadTemplate(t), "transformed": transformed(t)} {
		t.Run(name, func(t *testing.T) {
			found := map[string][]string{}
			namedActions(tmpl["Resources"], "Resources", found)
			if len(found) == 0 {
				t.Fatal("no action found")
			}
			var names []string
			for a := range found {
				names = append(names, a)
			}
			sort.Strings(names)
			for _, a := range names {
				if !actionShape.MatchString(a) {
					t.Errorf("%q (at %v) is not of the form service:Action", a, found[a])
					continue
				}
				la := strings.ToLower(a)
				ok := known[la]
				if strings.ContainsAny(la, "*?") {
					for k := range known {
						if m, _ := path.Match(la, k); m {
							ok = true
							break
						}
					}
				}
				if !ok {
					t.Errorf("%s (at %v) is not an IAM action of its service (testdata/iam-actions.txt)", a, found[a])
				}
			}
			t.Logf("%d actions checked: %v", len(names), names)
		})
	}
}

// The key's policy keeps the account's administration and delegation to
// IAM, but for unwrapping: kms:Decrypt (and ReEncryptFrom and CreateGrant,
// which would amount to it) only by the resolve function's role and the
// break-glass role, when one is named.
func TestTemplateKeyPolicy(t *testing.T) {
	tmpl := loadTemplate(t)
	unwrap := []string{"kms:Decrypt", "kms:ReEncryptFrom", "kms:CreateGrant"}
	var decrypters, serviceKeyDecrypters []string
	rootSeen := false
	for _, s := range dig(t, tmpl, "Resources", "Key", "Properties", "KeyPolicy", "Statement").([]any) {
		sm, _ := s.(map[string]any)
		if iff, ok := sm["Fn::If"].([]any); ok {
			// A statement that exists under a condition: the break-glass role.
			if len(iff) != 3 || iff[0] != "HasBreakGlass" || iff[2].(map[string]any)["Ref"] != "AWS::NoValue" {
				t.Fatalf("unexpected conditional statement %v", iff)
			}
			sm = iff[1].(map[string]any)
		}
		if sm["Effect"] != "Allow" {
			continue
		}
		principal := fmt.Sprint(sm["Principal"])
		if na := strs(sm["NotAction"]); na != nil {
			if !strings.Contains(principal, ":root") {
				t.Errorf("a NotAction statement for %s", principal)
			}
			for _, a := range unwrap {
				if !slices.Contains(na, a) {
					t.Errorf("the account's statement does not exclude %s: %v", a, na)
				}
			}
			rootSeen = true
			continue
		}
		for _, a := range strs(sm["Action"]) {
			if a == "kms:*" || slices.Contains(unwrap, a) {
				if sm["Condition"] == nil {
					t.Errorf("%s may %s without the encryption-context condition", principal, a)
				}
				// Unwrapping the key check and the service keys only, by
				// their purpose, is not unwrapping a version's data key.
				cond, _ := sm["Condition"].(map[string]any)
				eq, _ := cond["StringEquals"].(map[string]any)
				if purposes := strs(eq["kms:EncryptionContext:purpose"]); purposes != nil {
					if !slices.Equal(purposes, []string{"mobius key check", "mobius service key"}) {
						t.Errorf("%s may %s for purposes %v", principal, a, purposes)
					}
					serviceKeyDecrypters = append(serviceKeyDecrypters, principal)
					continue
				}
				decrypters = append(decrypters, principal)
			}
		}
	}
	if !rootSeen {
		t.Error("the account no longer administers the key")
	}
	if want := []string{"map[AWS:[map[Fn::GetAtt:ApiFunctionRole.Arn] map[Fn::GetAtt:ResolveFunctionRole.Arn]]]"}; !slices.Equal(serviceKeyDecrypters, want) {
		t.Errorf("the service keys may be unwrapped by %v, want %v", serviceKeyDecrypters, want)
	}
	sort.Strings(decrypters)
	want := []string{"map[AWS:map[Fn::GetAtt:ResolveFunctionRole.Arn]]", "map[AWS:map[Ref:BreakGlassRoleArn]]"}
	sort.Strings(want)
	if !slices.Equal(decrypters, want) {
		t.Errorf("kms:Decrypt is granted to %v, want the resolve role and the break-glass role", decrypters)
	}
	// Without its IAM statement the resolve role has Decrypt from the key
	// policy only; no function's policy grants it.
	for _, fn := range []string{"ApiFunction", "ResolveFunction", "SweepFunction", "PublishFunction"} {
		if slices.Contains(actions(functionStatements(t, tmpl, fn), "kms:"), "Decrypt") {
			t.Errorf("%s's own policy grants kms:Decrypt; the key policy is where it is granted", fn)
		}
	}
}

// What the stack gives an operator, as the transform deploys it: each
// function on a live alias shifted by a canary whose rollback alarms exist;
// the HTTP API and the runner policy on the aliases; tracing; reserved
// concurrency only when asked for; the settings reach the functions; JSON
// access logs; every alarm notifies the topic when one is given.
func TestTemplateOperations(t *testing.T) {
	tmpl := loadTemplate(t)
	out := transformed(t)
	res := dig(t, out, "Resources").(map[string]any)
	byType := func(typ string) []string {
		var ids []string
		for id, r := range res {
			if r.(map[string]any)["Type"] == typ {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		return ids
	}
	for _, fn := range []string{"ApiFunction", "ResolveFunction"} {
		t.Run(fn, func(t *testing.T) {
			props := dig(t, res, fn, "Properties").(map[string]any)
			if got := dig(t, props, "TracingConfig", "Mode"); got != "Active" {
				t.Errorf("tracing %v", got)
			}
			if got := fmt.Sprint(props["ReservedConcurrentExecutions"]); !strings.Contains(got, "Fn::If") || !strings.Contains(got, "AWS::NoValue") {
				t.Errorf("ReservedConcurrentExecutions %s, want a condition that leaves it unset", got)
			}
			env := dig(t, props, "Environment", "Variables").(map[string]any)
			for _, k := range []string{"MOBIUS_DEADLINE_MARGIN", "MOBIUS_AWS_ATTEMPT_TIMEOUT", "MOBIUS_DATA_KEY_CACHE_TTL"} {
				if env[k] == nil {
					t.Errorf("%s is not set", k)
				}
			}
			alias := dig(t, res, fn+"Aliaslive", "Properties").(map[string]any)
			if alias["Name"] != "live" {
				t.Errorf("alias %v", alias["Name"])
			}
			dg := dig(t, res, fn+"DeploymentGroup", "Properties").(map[string]any)
			if got := fmt.Sprint(dig(t, dg, "DeploymentConfigName")); !strings.Contains(got, "Canary10Percent5Minutes") {
				t.Errorf("deployment config %s", got)
			}
			alarms := dig(t, dg, "AlarmConfiguration", "Alarms").([]any)
			if len(alarms) < 2 {
				t.Errorf("%d rollback alarms", len(alarms))
			}
			for _, a := range alarms {
				id := fmt.Sprint(dig(t, a, "Name", "Ref"))
				if dig(t, res, id, "Type") != "AWS::CloudWatch::Alarm" {
					t.Errorf("rollback alarm %s is not an alarm of the stack", id)
				}
			}
		})
	}
	t.Run("HTTP API integrates the API alias", func(t *testing.T) {
		body := fmt.Sprint(dig(t, res, "HttpApi", "Properties", "Body"))
		if !strings.Contains(body, "${ApiFunctionAliaslive}") || strings.Contains(body, "${ApiFunction.Arn}") {
			t.Errorf("integration: %s", body)
		}
		for _, id := range byType("AWS::Lambda::Permission") {
			want := map[string]string{"apigateway.amazonaws.com": "map[Ref:ApiFunctionAliaslive]", "events.amazonaws.com": "map[Ref:SweepFunctionAliaslive]"}
			principal := fmt.Sprint(dig(t, res, id, "Properties", "Principal"))
			if got := fmt.Sprint(dig(t, res, id, "Properties", "FunctionName")); got != want[principal] {
				t.Errorf("%s lets %s invoke %s, want %s", id, principal, got, want[principal])
			}
		}
	})
	t.Run("the publisher reads the stream's change events", func(t *testing.T) {
		if got := dig(t, tmpl, "Resources", "Table", "Properties", "StreamSpecification", "StreamViewType"); got != "NEW_IMAGE" && got != "NEW_AND_OLD_IMAGES" {
			t.Errorf("the table's stream carries %v; the publisher needs new images", got)
		}
		esm := dig(t, res, "PublishEventSource", "Properties").(map[string]any)
		for k, want := range map[string]string{
			"FunctionName":               "map[Ref:PublishFunctionAliaslive]",
			"EventSourceArn":             "map[Fn::GetAtt:[Table StreamArn]]",
			"FunctionResponseTypes":      "[ReportBatchItemFailures]",
			"BisectBatchOnFunctionError": "true",
			"DestinationConfig":          "map[OnFailure:map[Destination:map[Fn::GetAtt:[PublishDeadLetterQueue Arn]]]]",
		} {
			if got := fmt.Sprint(esm[k]); got != want {
				t.Errorf("the event source mapping's %s is %s, want %s", k, got, want)
			}
		}
		for _, k := range []string{"MaximumRecordAgeInSeconds", "MaximumRetryAttempts", "BatchSize"} {
			if n, _ := esm[k].(float64); n <= 0 {
				t.Errorf("the event source mapping's %s is %v, want a bound", k, esm[k])
			}
		}
		// The filter keeps inserts into event partitions and nothing else.
		pattern := filterPattern(t)
		for _, c := range []struct {
			rec  string
			keep bool
		}{
			{`{"eventName":"INSERT","dynamodb":{"Keys":{"PK":{"S":"E#acme"},"SK":{"S":"evt_1"}}}}`, true},
			{`{"eventName":"REMOVE","dynamodb":{"Keys":{"PK":{"S":"E#acme"},"SK":{"S":"evt_1"}}}}`, false},
			{`{"eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"E#acme"},"SK":{"S":"evt_1"}}}}`, false},
			{`{"eventName":"INSERT","dynamodb":{"Keys":{"PK":{"S":"P#acme"},"SK":{"S":"S#x"}}}}`, false},
			{`{"eventName":"INSERT","dynamodb":{"Keys":{"PK":{"S":"A#acme#E#x#0"},"SK":{"S":"R#x"}}}}`, false},
		} {
			var m map[string]any
			json.Unmarshal([]byte(c.rec), &m)
			if got := matches(t, pattern, m); got != c.keep {
				t.Errorf("the filter keeps %s: %v, want %v", c.rec, got, c.keep)
			}
		}
		// Its role is the template's statements and the basic managed
		// policies, not the broad AWSLambdaDynamoDBExecutionRole.
		for _, role := range []string{"PublishFunctionRole", "SweepFunctionRole"} {
			for _, arn := range asList(dig(t, res, role, "Properties", "ManagedPolicyArns")) {
				if a := fmt.Sprint(arn); !strings.HasSuffix(a, "/AWSLambdaBasicExecutionRole") && !strings.HasSuffix(a, "/AWSXrayWriteOnlyAccess") {
					t.Errorf("%s has the managed policy %s", role, a)
				}
			}
		}
	})
	t.Run("the sweep runs every minute on its alias, never retried", func(t *testing.T) {
		var rules []string
		for _, id := range byType("AWS::Events::Rule") {
			p := dig(t, res, id, "Properties").(map[string]any)
			rules = append(rules, id)
			if p["ScheduleExpression"] != "rate(1 minute)" || fmt.Sprint(p["Targets"]) != "[map[Arn:map[Ref:SweepFunctionAliaslive] Id:SweepFunctionEveryMinuteLambdaTarget]]" {
				t.Errorf("%s: %v", id, p)
			}
		}
		if len(rules) != 1 {
			t.Errorf("schedules %v, want the sweep's", rules)
		}
		cfg := dig(t, res, "SweepFunctionEventInvokeConfig", "Properties").(map[string]any)
		if fmt.Sprint(cfg["MaximumRetryAttempts"]) != "0" || cfg["Qualifier"] != "live" {
			t.Errorf("the sweep's invoke config %v", cfg)
		}
	})
	t.Run("runners invoke the resolve alias", func(t *testing.T) {
		doc := dig(t, res, "RunnerInvokePolicy", "Properties", "PolicyDocument", "Statement").([]any)
		if len(doc) != 1 || fmt.Sprint(doc[0].(map[string]any)["Resource"]) != "map[Ref:ResolveFunctionAliaslive]" {
			t.Errorf("runner policy %v", doc)
		}
		if got := fmt.Sprint(dig(t, out, "Outputs", "ResolveFunctionArn", "Value")); got != "map[Ref:ResolveFunctionAliaslive]" {
			t.Errorf("ResolveFunctionArn output %s", got)
		}
	})
	t.Run("JSON access log", func(t *testing.T) {
		format := fmt.Sprint(dig(t, tmpl, "Resources", "HttpApi", "Properties", "AccessLogSettings", "Format"))
		var m map[string]string
		if err := jsonUnmarshalString(format, &m); err != nil {
			t.Fatalf("the access log format is not a JSON object: %v\n%s", err, format)
		}
		for k, v := range map[string]string{"requestId": "$context.requestId", "routeKey": "$context.routeKey",
			"status": "$context.status", "latencyMs": "$context.responseLatency", "integrationError": "$context.integrationErrorMessage"} {
			if m[k] != v {
				t.Errorf("access log %s = %q, want %q", k, m[k], v)
			}
		}
	})
	t.Run("alarms", func(t *testing.T) {
		alarms := byType("AWS::CloudWatch::Alarm")
		namespaces, metrics := map[string]bool{}, map[string]bool{}
		for _, id := range alarms {
			p := dig(t, res, id, "Properties").(map[string]any)
			for _, k := range []string{"AlarmActions", "OKActions"} {
				if got := fmt.Sprint(p[k]); !strings.Contains(got, "HasAlarmTopic") || !strings.Contains(got, "AlarmTopicArn") {
					t.Errorf("%s %s = %s, want the topic under HasAlarmTopic", id, k, got)
				}
			}
			if ns, ok := p["Namespace"].(string); ok {
				namespaces[ns] = true
				if ns == "AWS/Lambda" {
					metrics[fmt.Sprint(p["MetricName"], " ", p["Dimensions"])] = true
				}
			}
			for _, m := range asList(p["Metrics"]) {
				if ns, ok := digOK(m, "MetricStat", "Metric", "Namespace"); ok {
					namespaces[fmt.Sprint(ns)] = true
				}
			}
		}
		for _, ns := range []string{"AWS/Lambda", "AWS/ApiGateway", "AWS/DynamoDB", "AWS/Usage", "AWS/SQS"} {
			if !namespaces[ns] {
				t.Errorf("no alarm on %s (alarms: %v)", ns, alarms)
			}
		}
		for _, fn := range []string{"PublishFunction", "SweepFunction"} {
			found := false
			for m := range metrics {
				found = found || strings.HasPrefix(m, "Errors ") && strings.Contains(m, "Ref:"+fn+"]")
			}
			if !found {
				t.Errorf("no alarm on %s's errors", fn)
			}
		}
		found := false
		for m := range metrics {
			found = found || strings.HasPrefix(m, "IteratorAge ") && strings.Contains(m, "Ref:PublishFunction]")
		}
		if !found {
			t.Error("no alarm on the publisher's iterator age")
		}
	})
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func digOK(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func jsonUnmarshalString(s string, v any) error { return json.Unmarshal([]byte(s), v) }
