package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// motoAccount is the account moto answers for.
const motoAccount = "123456789012"

// eventsProxy stands between the publisher and moto's EventBridge: it
// records every PutEvents call and refuses the entries refuse picks, as
// EventBridge refuses entries (FailedEntryCount and an ErrorCode in their
// place), passing the others on to moto.
type eventsProxy struct {
	URL    string
	target string
	mu     sync.Mutex
	calls  [][]map[string]any // each call's entries
	refuse func(detail map[string]any) bool
}

func startEventsProxy(t *testing.T, target string) *eventsProxy {
	t.Helper()
	p := &eventsProxy{target: target}
	u, _ := url.Parse(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
			r.Body = io.NopCloser(bytes.NewReader(body))
			(&reverse{u}).ServeHTTP(w, r)
			return
		}
		p.putEvents(w, r, body)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *eventsProxy) setRefuse(f func(detail map[string]any) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = f
}

func (p *eventsProxy) takeCalls() [][]map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

func (p *eventsProxy) putEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct{ Entries []map[string]any }
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.calls = append(p.calls, in.Entries)
	refuse := p.refuse
	p.mu.Unlock()
	var pass []map[string]any
	refused := make([]bool, len(in.Entries))
	for i, e := range in.Entries {
		var detail map[string]any
		json.Unmarshal([]byte(fmt.Sprint(e["Detail"])), &detail)
		if refuse != nil && refuse(detail) {
			refused[i] = true
			continue
		}
		pass = append(pass, e)
	}
	var passed struct {
		FailedEntryCount int
		Entries          []map[string]any
	}
	if len(pass) > 0 {
		fwd, _ := json.Marshal(map[string]any{"Entries": pass})
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target+"/", bytes.NewReader(fwd))
		for k, v := range r.Header {
			req.Header[k] = v
		}
		req.Header.Del("Content-Length")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &passed) != nil || len(passed.Entries) != len(pass) {
			w.WriteHeader(resp.StatusCode)
			w.Write(b)
			return
		}
	}
	out := struct {
		FailedEntryCount int
		Entries          []map[string]any
	}{FailedEntryCount: passed.FailedEntryCount}
	j := 0
	for i := range in.Entries {
		if refused[i] {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, map[string]any{"ErrorCode": "InternalFailure", "ErrorMessage": "injected by the test"})
			continue
		}
		out.Entries = append(out.Entries, passed.Entries[j])
		j++
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// reverse passes a request on to a base URL.
type reverse struct{ base *url.URL }

func (rv *reverse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, rv.base.String()+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// filterPattern is the event source mapping's filter of template.yaml.
func filterPattern(t *testing.T) map[string]any {
	t.Helper()
	filters := dig(t, loadTemplate(t), "Resources", "PublishEventSource", "Properties", "FilterCriteria", "Filters").([]any)
	if len(filters) != 1 {
		t.Fatalf("%d filters, want 1", len(filters))
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(dig(t, filters[0], "Pattern").(string)), &p); err != nil {
		t.Fatalf("the filter pattern is not JSON: %v", err)
	}
	return p
}

// matches evaluates a Lambda event filter pattern against a record, for
// the forms the template's filter uses: an object of fields, each an
// object (a nested pattern) or a list of values or {"prefix": …}.
func matches(t *testing.T, pattern, rec map[string]any) bool {
	t.Helper()
	for k, want := range pattern {
		got, ok := rec[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case map[string]any:
			g, ok := got.(map[string]any)
			if !ok || !matches(t, w, g) {
				return false
			}
		case []any:
			hit := false
			for _, alt := range w {
				switch a := alt.(type) {
				case string:
					hit = hit || got == a
				case map[string]any:
					p, ok := a["prefix"].(string)
					if !ok || len(a) != 1 {
						t.Fatalf("a filter rule this evaluator does not know: %v", a)
					}
					s, isStr := got.(string)
					hit = hit || isStr && strings.HasPrefix(s, p)
				default:
					t.Fatalf("a filter value this evaluator does not know: %v", alt)
				}
			}
			if !hit {
				return false
			}
		default:
			t.Fatalf("a filter pattern this evaluator does not know: %v", want)
		}
	}
	return true
}

// poller plays Lambda's event source mapping for the publisher: it reads
// the table's stream, keeps the records the template's filter keeps, and
// invokes the function with them, retrying from the lowest record it
// reports (as the stream does) up to maxRetries times, then describing the
// batch in the dead-letter queue and moving on.
type poller struct {
	t          *testing.T
	sr         *awstest.StreamReader
	fn         *lambdatest.Emulator
	pattern    map[string]any
	sqs        *sqs.Client
	dlq        string // queue URL
	maxRetries int
	onSend     func(action, resource string) // told of each SendMessage
	dlqARN     string
	streamARN  string
	// seen counts the stream's records read, filtered counts those the
	// filter kept.
	seen, filtered int
}

// read returns the filtered records written since the last read.
func (p *poller) read() []json.RawMessage {
	p.t.Helper()
	raw, err := p.sr.Read(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	var out []json.RawMessage
	for _, r := range raw {
		var m map[string]any
		json.Unmarshal(r, &m)
		p.seen++
		if matches(p.t, p.pattern, m) {
			out = append(out, r)
			p.filtered++
		}
	}
	return out
}

type batchResponse struct {
	BatchItemFailures []struct {
		ItemIdentifier string `json:"itemIdentifier"`
	} `json:"batchItemFailures"`
}

// invoke sends recs to the function and returns the sequence numbers it
// reported.
func (p *poller) invoke(recs []json.RawMessage) []string {
	p.t.Helper()
	payload, _ := json.Marshal(map[string]any{"Records": recs})
	status, body := p.fn.Invoke(p.t, payload)
	var r batchResponse
	if status != 200 || json.Unmarshal(body, &r) != nil {
		p.t.Fatalf("publisher: status %d, %s\noutput:\n%s", status, body, p.fn.Output.String())
	}
	var out []string
	for _, f := range r.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

func seqOf(r json.RawMessage) string {
	var m struct {
		Dynamodb struct{ SequenceNumber string } `json:"dynamodb"`
	}
	json.Unmarshal(r, &m)
	return m.Dynamodb.SequenceNumber
}

// deliver invokes the function with recs until it reports nothing,
// resuming each time at the lowest record reported; after maxRetries it
// describes the rest of the batch in the dead-letter queue (as Lambda's
// on-failure destination does) and returns how many invocations it made.
func (p *poller) deliver(recs []json.RawMessage) int {
	p.t.Helper()
	n := 0
	for tries := 0; len(recs) > 0; tries++ {
		failed := p.invoke(recs)
		n++
		if len(failed) == 0 {
			return n
		}
		lowest := slices.IndexFunc(recs, func(r json.RawMessage) bool { return slices.Contains(failed, seqOf(r)) })
		if lowest < 0 {
			p.t.Fatalf("the function reported records it was not given: %v", failed)
		}
		recs = recs[lowest:]
		if tries == p.maxRetries {
			if p.onSend != nil {
				p.onSend("sqs:SendMessage", p.dlqARN)
			}
			body, _ := json.Marshal(map[string]any{"DDBStreamBatchInfo": map[string]any{
				"streamArn": p.streamARN, "startSequenceNumber": seqOf(recs[0]), "endSequenceNumber": seqOf(recs[0]), "batchSize": 1}})
			if _, err := p.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(p.dlq), MessageBody: aws.String(string(body))}); err != nil {
				p.t.Fatal(err)
			}
			recs, tries = recs[1:], -1
		}
	}
	return n
}

// busWithQueue makes an event bus of the test's own on moto with a rule
// that sends every event of source mobius.secrets to a new SQS queue, and
// returns the bus name and the queue's URL.
func busWithQueue(t *testing.T, moto, suffix string) (bus, queueURL string) {
	t.Helper()
	ctx := context.Background()
	eb := awstest.NewEventBridgeClient(moto)
	q := awstest.NewSQSClient(moto)
	bus = "mobius-" + suffix
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	qo, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events-" + suffix)})
	if err != nil {
		t.Fatal(err)
	}
	queueURL = aws.ToString(qo.QueueUrl)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all-" + suffix), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["mobius.secrets"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all-" + suffix), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(queueARN(queueURL))}}}); err != nil {
		t.Fatal(err)
	}
	return bus, queueURL
}

// queueARN is the ARN of a moto queue URL (…/ACCOUNT/NAME).
func queueARN(u string) string {
	return "arn:aws:sqs:" + awstest.Region + ":" + motoAccount + ":" + u[strings.LastIndex(u, "/")+1:]
}

// busEvent is an event as EventBridge delivers it to a target.
type busEvent struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     json.RawMessage `json:"detail"`
	raw        string
}

// receive drains the queue: every event delivered to it so far.
func receive(t *testing.T, c *sqs.Client, queueURL string) []busEvent {
	t.Helper()
	var out []busEvent
	for empty := 0; empty < 2; {
		res, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 0, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			empty++
			continue
		}
		for _, m := range res.Messages {
			var e busEvent
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				t.Fatalf("a queue message that is not an event: %s", aws.ToString(m.Body))
			}
			e.raw = aws.ToString(m.Body)
			out = append(out, e)
			if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// feedJSON is the project's feed as GET …/events serves it, read through
// the HTTP handler with a clock a minute ahead (every event settled).
func feedJSON(t *testing.T, moto string, env []string, project string) map[string]json.RawMessage {
	t.Helper()
	ctx := context.Background()
	ddb, kc := awstest.NewDynamoClient(moto), awstest.NewKMSClient(moto)
	svc := secrets.NewService(dynamo.New(ddb, lambdatest.EnvValue(t, env, "MOBIUS_TABLE")), kms.New(kc, lambdatest.EnvValue(t, env, "MOBIUS_KMS_KEY_ID")), secrets.Options{
		Now: func() time.Time { return time.Now().Add(time.Minute) }, KeyCheck: secrets.KeyCheckVerify})
	_, key, err := svc.CreateAPIKey(ctx, project, "feed-reader", []string{"secrets:read"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewHandler(svc, httpapi.Options{}))
	defer srv.Close()
	out := map[string]json.RawMessage{}
	after := ""
	for {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/projects/"+project+"/events?limit=100&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events    []json.RawMessage `json:"events"`
			NextAfter string            `json:"next_after"`
			More      bool              `json:"more"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || json.Unmarshal(b, &page) != nil {
			t.Fatalf("GET events: %d %s", resp.StatusCode, b)
		}
		for _, e := range page.Events {
			var id struct{ ID, Type string }
			json.Unmarshal(e, &id)
			if id.Type != "api_key.created" || !bytes.Contains(e, []byte(`"feed-reader"`)) {
				out[id.ID] = e
			}
		}
		if !page.More {
			return out
		}
		after = page.NextAfter
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// TestPublisherUnderEmulator builds the publisher and runs it under
// aws-lambda-rie against moto: changes made through the domain reach the
// table's stream, the template's filter keeps their events, and the
// function publishes each to an event bus, whose rule delivers it to an SQS
// queue with the source, the type as detail-type and, as detail, exactly
// what GET …/events serves; no value anywhere. A refused entry is
// reported, and the stream's retry from it publishes the rest; a record
// that cannot be read goes to the dead-letter queue without blocking
// those after it.
func TestPublisherUnderEmulator(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	suffix := strings.ToLower(secrets.NewULID(time.Now(), nil))
	apiEnv := setEnv(lambdatest.FunctionEnv(t, "ApiFunction", moto, awstest.Region),
		"MOBIUS_TABLE=pub-"+suffix, "MOBIUS_KMS_KEY_ID=alias/pub-"+suffix)
	table := lambdatest.EnvValue(t, apiEnv, "MOBIUS_TABLE")
	svc := lambdatest.StandIns(t, moto, apiEnv)
	ddb := awstest.NewDynamoClient(moto)
	streamARN, err := awstest.EnableStream(ctx, ddb, table, ddbtypes.StreamViewTypeNewImage)
	if err != nil {
		t.Fatal(err)
	}
	bus, queueURL := busWithQueue(t, moto, suffix)
	q := awstest.NewSQSClient(moto)
	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq-" + suffix)})
	if err != nil {
		t.Fatal(err)
	}
	proxy := startEventsProxy(t, moto)
	// moto takes seconds for a PutEvents of ten entries routed to a queue:
	// attempts of up to 20s, within the emulator's 30s timeout.
	env := setEnv(lambdatest.FunctionEnv(t, "PublishFunction", moto, awstest.Region),
		"MOBIUS_EVENT_BUS="+bus, "AWS_ENDPOINT_URL_EVENTBRIDGE="+proxy.URL, "MOBIUS_AWS_ATTEMPT_TIMEOUT=20s")
	fn := lambdatest.Start(t, bootstrap(t, "./functions/publish"), env)
	p := &poller{t: t, sr: &awstest.StreamReader{Endpoint: moto, Table: table}, fn: fn, pattern: filterPattern(t),
		sqs: q, dlq: aws.ToString(dlq.QueueUrl), maxRetries: 2, streamARN: streamARN}
	t.Cleanup(func() {
		if fn.Contains(canaryAPI, canaryDBPass) {
			t.Errorf("a value reached the publisher's output:\n%s", fn.Output.String())
		}
	})

	// Changes of every kind, through the domain, each secret holding a
	// canary value.
	round := 0
	change := func() {
		t.Helper()
		round++
		sec, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprint("db-", round), Values: map[string]string{"password": canaryDBPass},
			Labels: map[string]string{"env": "prod"}})
		if err != nil {
			t.Fatal(err)
		}
		newName := fmt.Sprint("db-main-", round)
		for _, in := range []secrets.UpdateSecretInput{
			{Values: map[string]string{"password": canaryAPI}},
			{Name: &newName},
			{Labels: map[string]string{"env": "staging"}},
		} {
			if _, err := svc.UpdateSecret(ctx, "acme", sec.ID, in); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range [][2]string{{"1", "enable"}, {"2", "destroy"}} {
			if _, _, err := svc.ChangeVersionState(ctx, "acme", sec.ID, a[0], a[1], nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.DeleteSecret(ctx, "acme", sec.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RestoreSecret(ctx, "acme", sec.ID, ""); err != nil {
			t.Fatal(err)
		}
		k, _, err := svc.CreateAPIKey(ctx, "acme", "ci", []string{"secrets:read"})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.RevokeAPIKey(ctx, "acme", k.ID); err != nil {
			t.Fatal(err)
		}
	}

	var delivered []busEvent
	t.Run("every change arrives as the feed serves it", func(t *testing.T) {
		change()
		recs := p.read()
		if p.filtered == 0 || p.filtered == p.seen {
			t.Fatalf("the filter kept %d of %d records; it must keep the events and drop the rest", p.filtered, p.seen)
		}
		if failed := p.invoke(recs); len(failed) != 0 {
			t.Fatalf("reported %v\noutput:\n%s", failed, fn.Output.String())
		}
		delivered = receive(t, q, queueURL)
		feed := feedJSON(t, moto, apiEnv, "acme")
		if len(delivered) != len(recs) || len(feed) != len(recs) {
			t.Fatalf("%d events delivered, %d in the feed, %d records", len(delivered), len(feed), len(recs))
		}
		types := map[string]bool{}
		for _, e := range delivered {
			var d struct{ ID, Type string }
			json.Unmarshal(e.Detail, &d)
			types[d.Type] = true
			if e.Source != "mobius.secrets" || e.DetailType != d.Type || !jsonEqual(e.Detail, feed[d.ID]) {
				t.Errorf("delivered %s\nthe feed serves %s", e.raw, feed[d.ID])
			}
			if strings.Contains(e.raw, "CANARY") {
				t.Errorf("a value was published: %s", e.raw)
			}
		}
		for _, typ := range []secrets.EventType{secrets.EventSecretCreated, secrets.EventSecretRotated, secrets.EventSecretRenamed,
			secrets.EventLabelsChanged, secrets.EventVersionEnabled, secrets.EventVersionDestroy, secrets.EventSecretDeleted, secrets.EventSecretRestored,
			secrets.EventAPIKeyCreated, secrets.EventAPIKeyRevoked} {
			if !types[string(typ)] {
				t.Errorf("no %s event was delivered (got %v)", typ, types)
			}
		}
		for _, call := range proxy.takeCalls() {
			for _, e := range call {
				if e["EventBusName"] != bus {
					t.Errorf("published to %v, want %s", e["EventBusName"], bus)
				}
			}
		}
	})

	t.Run("a refused entry is retried, and consumers dedupe by id", func(t *testing.T) {
		change()
		recs := p.read()
		if len(recs) < 4 {
			t.Fatalf("%d records", len(recs))
		}
		third := seqOf(recs[2])
		// The third entry of the first call is refused, once.
		var mu sync.Mutex
		n := 0
		proxy.setRefuse(func(map[string]any) bool {
			mu.Lock()
			defer mu.Unlock()
			n++
			return n == 3
		})
		failed := p.invoke(recs)
		proxy.setRefuse(nil)
		if !slices.Contains(failed, third) {
			t.Fatalf("reported %v, not the refused record %s", failed, third)
		}
		for _, r := range recs[:2] {
			if slices.Contains(failed, seqOf(r)) {
				t.Errorf("a record before the refused one was reported: %v", failed)
			}
		}
		if !fn.WaitFor(5*time.Second, func(o string) bool { return strings.Contains(o, `"error_code":"InternalFailure"`) }) {
			t.Errorf("the refusal was not logged:\n%s", fn.Output.String())
		}
		// The stream resumes at the lowest record reported.
		if got := p.invoke(recs[2:]); len(got) != 0 {
			t.Fatalf("the retry reported %v", got)
		}
		got := receive(t, q, queueURL)
		feed := feedJSON(t, moto, apiEnv, "acme")
		ids := map[string]int{}
		for _, e := range got {
			var d struct{ ID string }
			json.Unmarshal(e.Detail, &d)
			ids[d.ID]++
			if !jsonEqual(e.Detail, feed[d.ID]) {
				t.Errorf("delivered %s\nthe feed serves %s", e.Detail, feed[d.ID])
			}
		}
		if len(ids) != len(recs) {
			t.Errorf("%d distinct events delivered, want %d", len(ids), len(recs))
		}
		if len(got) < len(recs) || len(got) > len(recs)+maxEntriesPerCall-3 {
			t.Errorf("%d deliveries of %d events", len(got), len(recs))
		}
	})

	t.Run("a record that cannot be read goes to the dead-letter queue and blocks nothing", func(t *testing.T) {
		// An item in an event partition that is not an event.
		if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
			"PK": &ddbtypes.AttributeValueMemberS{Value: "E#acme"}, "SK": &ddbtypes.AttributeValueMemberS{Value: "evt_not-an-event"},
			"v": &ddbtypes.AttributeValueMemberB{Value: []byte("{" + canaryDBPass)}, "rev": &ddbtypes.AttributeValueMemberN{Value: "1"},
		}}); err != nil {
			t.Fatal(err)
		}
		change()
		recs := p.read()
		if n := p.deliver(recs); n != 4 {
			t.Errorf("%d invocations, want 4 (the damaged record's first try and 2 retries, then the rest)", n)
		}
		dl := receive(t, q, aws.ToString(dlq.QueueUrl))
		if len(dl) != 1 {
			t.Errorf("%d dead letters, want 1", len(dl))
		}
		if got := receive(t, q, queueURL); len(got) != len(recs)-1 {
			t.Errorf("%d events delivered after the damaged record, want %d", len(got), len(recs)-1)
		}
		if !fn.WaitFor(5*time.Second, func(o string) bool { return strings.Contains(o, "cannot be read") }) {
			t.Errorf("the damaged record was not logged:\n%s", fn.Output.String())
		}
	})

	t.Run("the sample event", func(t *testing.T) {
		if failed := p.invoke([]json.RawMessage{sampleRecord(t)}); len(failed) != 0 {
			t.Fatalf("reported %v\noutput:\n%s", failed, fn.Output.String())
		}
		got := receive(t, q, queueURL)
		if len(got) != 1 || got[0].DetailType != "secret.created" || !strings.Contains(string(got[0].Detail), `"evt_01Q3G99648812798SA1MA8P0S6"`) {
			t.Fatalf("delivered %v", got)
		}
		// The stored record keeps its digest in base64 and its time in
		// Unix milliseconds; the detail is the API's event, in hex and
		// RFC 3339.
		var detail struct{ SHA256, At string }
		if err := json.Unmarshal(got[0].Detail, &detail); err != nil ||
			detail.SHA256 != "a606b10e9324bdcd280af8bf49ca7fd656dad2b25b48d8f7a02a360659980956" || detail.At != "2030-01-02T03:04:05Z" {
			t.Errorf("the detail %s: sha256 %q, at %q (%v)", got[0].Detail, detail.SHA256, detail.At, err)
		}
	})
}

// maxEntriesPerCall is PutEvents' limit, which the publisher batches by.
const maxEntriesPerCall = 10

// sampleRecord is the record of infra/events/publish.json.
func sampleRecord(t *testing.T) json.RawMessage {
	t.Helper()
	var ev struct{ Records []json.RawMessage }
	if err := json.Unmarshal(lambdatest.Event(t, "publish.json", "", nil), &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("infra/events/publish.json: %v", err)
	}
	return ev.Records[0]
}

// TestSweepUnderEmulator builds the sweep and runs it under aws-lambda-rie
// against moto with the scheduled sample event: a rotation reminder due
// fires once, and a trashed secret whose retention ended is purged, its
// ciphertext with it; a second run finds nothing to do.
func TestSweepUnderEmulator(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	suffix := strings.ToLower(secrets.NewULID(time.Now(), nil))
	env := setEnv(lambdatest.FunctionEnv(t, "SweepFunction", moto, awstest.Region),
		"MOBIUS_TABLE=sweep-"+suffix, "MOBIUS_KMS_KEY_ID=alias/sweep-"+suffix)
	svc := lambdatest.StandIns(t, moto, env)
	ddb, kc := awstest.NewDynamoClient(moto), awstest.NewKMSClient(moto)
	store, keys := dynamo.New(ddb, lambdatest.EnvValue(t, env, "MOBIUS_TABLE")), kms.New(kc, lambdatest.EnvValue(t, env, "MOBIUS_KMS_KEY_ID"))

	// A secret to rotate within the day (its creation writes the key
	// check), and one trashed eight days ago (the trash keeps seven).
	soon, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "soon", Values: map[string]string{"k": canaryAPI},
		RotateBy: time.Now().Add(12 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	past := secrets.NewService(store, keys, secrets.Options{Now: func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }})
	old, err := past.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "old", Values: map[string]string{"k": canaryDBPass}})
	if err != nil {
		t.Fatal(err)
	}
	if err := past.DeleteSecret(ctx, "acme", "old", nil); err != nil {
		t.Fatal(err)
	}

	fn := lambdatest.Start(t, bootstrap(t, "./functions/sweep"), env)
	t.Cleanup(func() {
		if fn.Contains(canaryAPI, canaryDBPass) {
			t.Errorf("a value reached the sweep's output:\n%s", fn.Output.String())
		}
	})
	sweep := func(t *testing.T) map[string]int {
		t.Helper()
		status, body := fn.Invoke(t, lambdatest.Event(t, "sweep.json", "", nil))
		var rep map[string]int
		if status != 200 || json.Unmarshal(body, &rep) != nil {
			t.Fatalf("status %d, %s\noutput:\n%s", status, body, fn.Output.String())
		}
		return rep
	}
	t.Run("due work is done", func(t *testing.T) {
		rep := sweep(t)
		if rep["reminders"] != 1 || rep["purged"] != 1 || rep["passes"] < 2 {
			t.Fatalf("report %v", rep)
		}
		trash, _, err := svc.ListTrash(ctx, "acme", "", 10)
		if err != nil || len(trash) != 0 {
			t.Errorf("the trash holds %d after the sweep (%v)", len(trash), err)
		}
		if items, err := store.Query(ctx, kvQuery(secrets.CiphertextItemKey("acme", old.ID, 1).Partition)); err != nil || len(items) != 0 {
			t.Errorf("%d items of the purged secret remain (%v)", len(items), err)
		}
		later := secrets.NewService(store, keys, secrets.Options{Now: func() time.Time { return time.Now().Add(time.Minute) }})
		page, err := later.ListEvents(ctx, "acme", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		count := map[secrets.EventType]int{}
		for _, ev := range page.Events {
			if ev.SecretID == soon.ID || ev.SecretID == old.ID {
				count[ev.Type]++
			}
		}
		if count[secrets.EventRotationDue] != 1 || count[secrets.EventSecretPurged] != 1 {
			t.Errorf("events %v, want one secret.rotation_due and one secret.purged", count)
		}
	})
	t.Run("a reminder fires once", func(t *testing.T) {
		if rep := sweep(t); rep["reminders"] != 0 || rep["purged"] != 0 || rep["passes"] != 1 {
			t.Errorf("second sweep: %v", rep)
		}
	})
	if !strings.Contains(fn.Output.String(), `"msg":"swept"`) {
		t.Errorf("the sweep logged nothing:\n%s", fn.Output.String())
	}
}

func kvQuery(partition string) kv.Query { return kv.Query{Partition: partition, Limit: kv.MaxOps} }
