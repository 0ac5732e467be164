package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const canary = "CANARY-publisher-value-5c0e"

// feed makes n changes in project acme through the domain, each secret
// holding the canary, and returns the event items the domain wrote (in
// feed order) and the feed as GET …/events serves it.
func feed(t *testing.T, n int) ([]kv.Item, []api.Event) {
	t.Helper()
	w := testenv.LocalKeys(t)
	d := memkv.New()
	ctx := context.Background()
	svc := secrets.NewService(d, w, secrets.Options{})
	for i := range n {
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s%02d", i), Values: map[string]string{"k": canary}}); err != nil {
			t.Fatal(err)
		}
	}
	var items []kv.Item
	d.Each(func(it kv.Item) {
		if strings.HasPrefix(it.Partition, "E#") {
			items = append(items, it)
		}
	})
	slices.SortFunc(items, func(a, b kv.Item) int { return strings.Compare(a.Sort, b.Sort) })
	later := secrets.NewService(d, w, secrets.Options{Now: func() time.Time { return time.Now().Add(time.Minute) }})
	page, err := later.ListEvents(ctx, "acme", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var want []api.Event
	for _, ev := range page.Events {
		want = append(want, httpapi.NewEventJSON(ev))
	}
	if len(items) != n || len(want) != n {
		t.Fatalf("%d event items, %d in the feed; want %d", len(items), len(want), n)
	}
	return items, want
}

// record is the stream record of an insert of it, in the driver's item
// form (pkg/store/dynamo's package doc), with sequence number seq.
func record(it kv.Item, seq int) events.DynamoDBEventRecord {
	image := map[string]events.DynamoDBAttributeValue{
		"PK":  events.NewStringAttribute(it.Partition),
		"SK":  events.NewStringAttribute(it.Sort),
		"v":   events.NewBinaryAttribute(it.Value),
		"rev": events.NewNumberAttribute(strconv.FormatInt(it.Rev, 10)),
	}
	if !it.Expires.IsZero() {
		image["exp"] = events.NewNumberAttribute(strconv.FormatInt(it.Expires.UnixMilli(), 10))
		image["expires_at"] = events.NewNumberAttribute(strconv.FormatInt(it.Expires.Unix()+1, 10))
	}
	return events.DynamoDBEventRecord{
		EventName: "INSERT", EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{"PK": image["PK"], "SK": image["SK"]},
			NewImage:       image,
			SequenceNumber: strconv.Itoa(1000 + seq),
			StreamViewType: "NEW_IMAGE",
		},
	}
}

func records(items []kv.Item) []events.DynamoDBEventRecord {
	var out []events.DynamoDBEventRecord
	for i, it := range items {
		out = append(out, record(it, i))
	}
	return out
}

// fakeBus is EventBridge: it records every call, and answers as answer
// says (nil: every entry published).
type fakeBus struct {
	calls  [][]ebtypes.PutEventsRequestEntry
	ctxErr []error // each call's ctx.Err() when it was made
	answer func(call int, entries []ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error)
}

func (f *fakeBus) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.calls = append(f.calls, in.Entries)
	f.ctxErr = append(f.ctxErr, ctx.Err())
	if f.answer != nil {
		return f.answer(len(f.calls)-1, in.Entries)
	}
	return published(in.Entries, nil), nil
}

// published answers entries, failing those whose index is in failed.
func published(entries []ebtypes.PutEventsRequestEntry, failed []int) *eventbridge.PutEventsOutput {
	out := &eventbridge.PutEventsOutput{}
	for i := range entries {
		if slices.Contains(failed, i) {
			out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("injected")})
			out.FailedEntryCount++
			continue
		}
		out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{EventId: aws.String(fmt.Sprint("eb-", i))})
	}
	return out
}

func newPublisher(bus *fakeBus, logs *bytes.Buffer) *publisher {
	return &publisher{api: bus, bus: "mobius-test", log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func seqs(recs []events.DynamoDBEventRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Change.SequenceNumber)
	}
	return out
}

func failures(resp events.DynamoDBEventResponse) []string {
	var out []string
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	slices.Sort(out)
	return out
}

// Every event goes out, in feed order, ten a call, with the source, the
// type as detail-type and the feed's own JSON as detail; nothing holds a
// value.
func TestPublishBatches(t *testing.T) {
	items, want := feed(t, 23)
	bus := &fakeBus{}
	var logs bytes.Buffer
	resp, err := newPublisher(bus, &logs).Handle(context.Background(), events.DynamoDBEvent{Records: records(items)})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v, err %v", resp.BatchItemFailures, err)
	}
	var sizes []int
	var sent []ebtypes.PutEventsRequestEntry
	for _, c := range bus.calls {
		sizes = append(sizes, len(c))
		sent = append(sent, c...)
	}
	if !slices.Equal(sizes, []int{10, 10, 3}) {
		t.Fatalf("calls of %v entries, want 10, 10, 3", sizes)
	}
	for i, e := range sent {
		wantDetail, _ := json.Marshal(want[i])
		if aws.ToString(e.Source) != "mobius.secrets" || aws.ToString(e.DetailType) != want[i].Type ||
			aws.ToString(e.Detail) != string(wantDetail) || aws.ToString(e.EventBusName) != "mobius-test" || !aws.ToTime(e.Time).Equal(want[i].At) {
			t.Errorf("entry %d: %s %s %s %s %v\nwant detail %s", i, aws.ToString(e.Source), aws.ToString(e.DetailType),
				aws.ToString(e.EventBusName), aws.ToString(e.Detail), aws.ToTime(e.Time), wantDetail)
		}
		if want[i].Type != "secret.created" {
			t.Errorf("entry %d: type %s", i, want[i].Type)
		}
		if strings.Contains(aws.ToString(e.Detail), canary) {
			t.Errorf("a value in entry %d: %s", i, aws.ToString(e.Detail))
		}
	}
	if strings.Contains(logs.String(), canary) || !strings.Contains(logs.String(), `"published":23`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// Records that hold no change event (other partitions, modifications,
// removals by time to live) are skipped without a call or a failure.
func TestPublishSkipsOtherRecords(t *testing.T) {
	items, _ := feed(t, 2)
	recs := records(items)
	modify := recs[0]
	modify.EventName = "MODIFY"
	remove := recs[1]
	remove.EventName, remove.Change.NewImage = "REMOVE", nil
	other := record(kv.Item{Key: kv.Key{Partition: "P#acme", Sort: "S#x"}, Value: []byte(canary), Rev: 1}, 7)
	bus := &fakeBus{}
	var logs bytes.Buffer
	resp, _ := newPublisher(bus, &logs).Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{modify, remove, other}})
	if len(resp.BatchItemFailures) != 0 || len(bus.calls) != 0 {
		t.Fatalf("failures %v, %d calls", resp.BatchItemFailures, len(bus.calls))
	}
	if !strings.Contains(logs.String(), `"skipped":3`) {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// A failure stops publishing: the record that failed, the others of its
// call that failed, and every record after it are reported, and nothing
// after it is sent (the stream resumes at the lowest reported record).
func TestPublishFailures(t *testing.T) {
	items, _ := feed(t, 25)
	recs := records(items)
	all := seqs(recs)
	damaged := record(kv.Item{Key: kv.Key{Partition: "E#acme", Sort: "evt_damaged"}, Value: []byte("{" + canary), Rev: 1}, 99)
	withDamaged := append(append(append([]events.DynamoDBEventRecord{}, recs[:12]...), damaged), recs[12:]...)
	for _, c := range []struct {
		name   string
		recs   []events.DynamoDBEventRecord
		answer func(call int, entries []ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error)
		calls  []int    // entries per call made
		failed []string // sequence numbers reported
		log    string
	}{
		{"entries refused in the second call", recs,
			func(call int, es []ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
				if call == 1 {
					return published(es, []int{3, 7}), nil
				}
				return published(es, nil), nil
			},
			[]int{10, 10}, append([]string{all[13], all[17]}, all[20:]...), `"error_code":"InternalFailure"`},
		{"the first call fails whole", recs,
			func(int, []ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
				return nil, errors.New("injected: connection reset")
			},
			[]int{10}, all, "EventBridge did not take the events"},
		{"a count of failures without the entries", recs,
			func(call int, es []ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
				out := published(es, nil)
				out.FailedEntryCount = 1
				return out, nil
			},
			[]int{10}, all, "does not say which events failed"},
		{"a damaged event item", withDamaged, nil,
			[]int{10, 2}, append([]string{damaged.Change.SequenceNumber}, all[12:]...), "cannot be read"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bus := &fakeBus{answer: c.answer}
			var logs bytes.Buffer
			resp, err := newPublisher(bus, &logs).Handle(context.Background(), events.DynamoDBEvent{Records: c.recs})
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			for _, call := range bus.calls {
				sizes = append(sizes, len(call))
			}
			if !slices.Equal(sizes, c.calls) {
				t.Errorf("calls of %v entries, want %v", sizes, c.calls)
			}
			want := slices.Clone(c.failed)
			slices.Sort(want)
			if got := failures(resp); !slices.Equal(got, want) {
				t.Errorf("reported %v\nwant     %v", got, want)
			}
			if !strings.Contains(logs.String(), c.log) || !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("logs lack %q at ERROR:\n%s", c.log, logs.String())
			}
			if strings.Contains(logs.String(), canary) {
				t.Errorf("a value reached the log:\n%s", logs.String())
			}
		})
	}
}

// A batch that outlives the invocation's deadline margin reports what it
// could not send instead of timing out.
func TestPublishDeadline(t *testing.T) {
	items, _ := feed(t, 3)
	var bus *fakeBus
	bus = &fakeBus{answer: func(call int, es []ebtypes.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
		if err := bus.ctxErr[call]; err != nil {
			return nil, err // as the SDK answers a call whose context ended
		}
		return published(es, nil), nil
	}}
	var logs bytes.Buffer
	p := newPublisher(bus, &logs)
	p.margin = 2 * time.Minute // more than the time the invocation has left
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, _ := p.Handle(ctx, events.DynamoDBEvent{Records: records(items)})
	if got := failures(resp); len(got) != 3 || !errors.Is(bus.ctxErr[0], context.DeadlineExceeded) {
		t.Fatalf("reported %v (the call's context: %v), want all 3 after the margin ended the call", got, bus.ctxErr)
	}
}
