package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// Source is the source of every event the stack publishes.
const Source = "mobius.secrets"

// maxEntries is the most entries one PutEvents call takes. Ten events of
// the feed (each well under 1 KB) stay far below its 256 KB limit.
const maxEntries = 10

// putEventsAPI is the part of the EventBridge client the publisher calls.
type putEventsAPI interface {
	PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// publisher sends the change events of a batch of stream records to the
// event bus, in stream order, at most maxEntries per call.
type publisher struct {
	api    putEventsAPI
	bus    string
	log    *slog.Logger
	margin time.Duration
}

// Handle publishes the events of a batch of stream records and reports
// the records to retry (ReportBatchItemFailures). It never fails the
// invocation: every problem is a record reported.
func (p *publisher) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var inv awsapp.Invocation
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv.LambdaRequestID = lc.AwsRequestID
	}
	ctx = awsapp.BeginInvocation(ctx, inv)
	ctx, cancel := awsapp.WithDeadlineMargin(ctx, p.margin)
	defer cancel()
	return p.publish(ctx, ev.Records), nil
}

// entry is a record's event, ready to send.
type entry struct {
	seq     string // the record's sequence number
	eventID string
	put     ebtypes.PutEventsRequestEntry
}

// publish sends the events of recs in order. The stream resumes a batch
// at the lowest sequence number reported, so publishing stops at the first
// record that fails: that record, any other of its call that failed, and
// every record after are reported, and nothing after it is sent now (it
// would be sent again on the retry). A record that is not an insert of a
// change event (the event source mapping's filter lets none through) is
// skipped.
func (p *publisher) publish(ctx context.Context, recs []events.DynamoDBEventRecord) events.DynamoDBEventResponse {
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	fail := func(seq string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
	}
	var chunk []entry
	published, skipped, stopped := 0, 0, false
	// flush sends chunk; false if any of it failed.
	flush := func() bool {
		if len(chunk) == 0 {
			return true
		}
		bad := p.put(ctx, chunk)
		for _, i := range bad {
			fail(chunk[i].seq)
		}
		published += len(chunk) - len(bad)
		chunk = chunk[:0]
		return len(bad) == 0
	}
	for _, rec := range recs {
		seq := rec.Change.SequenceNumber
		if stopped {
			fail(seq)
			continue
		}
		e, ok, err := p.entry(rec)
		switch {
		case err != nil:
			p.log.ErrorContext(ctx, "a change event of the stream cannot be read; it is retried, then reported to the dead-letter queue",
				"sequence_number", seq, "err", err.Error())
			flush() // the events before it go out now
			stopped = true
			fail(seq)
		case !ok:
			skipped++
		default:
			chunk = append(chunk, e)
			if len(chunk) == maxEntries {
				stopped = !flush()
			}
		}
	}
	if !stopped {
		flush()
	}
	p.log.InfoContext(ctx, "published", "records", len(recs), "published", published, "skipped", skipped, "failed", len(resp.BatchItemFailures))
	return resp
}

// entry reads the change event of rec: ok is false for a record that holds
// none (not an insert into an event partition).
func (p *publisher) entry(rec events.DynamoDBEventRecord) (entry, bool, error) {
	if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
		return entry{}, false, nil
	}
	pk, ok := rec.Change.Keys[dynamo.PartitionKey]
	if !ok || pk.DataType() != events.DataTypeString || !strings.HasPrefix(pk.String(), "E#") {
		return entry{}, false, nil
	}
	it, err := dynamo.StreamImageItem(rec.Change.NewImage)
	if err != nil {
		return entry{}, false, err
	}
	ev, err := secrets.DecodeEventItem(it)
	if err != nil {
		return entry{}, false, err
	}
	detail, err := json.Marshal(httpapi.NewEventJSON(ev))
	if err != nil {
		return entry{}, false, err
	}
	return entry{seq: rec.Change.SequenceNumber, eventID: ev.ID, put: ebtypes.PutEventsRequestEntry{
		Source:       aws.String(Source),
		DetailType:   aws.String(string(ev.Type)),
		Detail:       aws.String(string(detail)),
		EventBusName: aws.String(p.bus),
		Time:         aws.Time(ev.At),
	}}, true, nil
}

// put sends chunk in one PutEvents call and returns the indexes of the
// entries that were not published: all of them if the call failed.
func (p *publisher) put(ctx context.Context, chunk []entry) []int {
	in := &eventbridge.PutEventsInput{Entries: make([]ebtypes.PutEventsRequestEntry, len(chunk))}
	for i, e := range chunk {
		in.Entries[i] = e.put
	}
	all := func() []int {
		out := make([]int, len(chunk))
		for i := range out {
			out[i] = i
		}
		return out
	}
	out, err := p.api.PutEvents(ctx, in)
	if err != nil {
		p.log.ErrorContext(ctx, "EventBridge did not take the events; they are retried", "bus", p.bus,
			"events", len(chunk), "first_event_id", chunk[0].eventID, "err", err.Error())
		return all()
	}
	var bad []int
	for i, r := range out.Entries {
		if r.ErrorCode != nil && i < len(chunk) {
			bad = append(bad, i)
			p.log.ErrorContext(ctx, "EventBridge refused an event; it is retried", "bus", p.bus,
				"event_id", chunk[i].eventID, "sequence_number", chunk[i].seq,
				"error_code", aws.ToString(r.ErrorCode), "error_message", aws.ToString(r.ErrorMessage))
		}
	}
	if int(out.FailedEntryCount) > len(bad) || len(out.Entries) != len(chunk) {
		// An answer that does not say which entries failed: all are
		// retried (consumers dedupe by the event's id).
		p.log.ErrorContext(ctx, "EventBridge's answer does not say which events failed; all are retried", "bus", p.bus,
			"events", len(chunk), "failed_entry_count", out.FailedEntryCount, "entries", len(out.Entries))
		return all()
	}
	for i, e := range chunk {
		if !slices.Contains(bad, i) {
			p.log.DebugContext(ctx, "published event", "event_id", e.eventID, "type", aws.ToString(e.put.DetailType))
		}
	}
	return bad
}
