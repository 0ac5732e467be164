package dynamo_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// Items the driver writes, alone (PutItem) and in a transaction, come out
// of the table's stream, as a function triggered by it receives them, as
// the items Get reads.
func TestStreamImageItem(t *testing.T) {
	e := newEnv(t, backends[0], envOpts{}) // moto: minidyn has no streams
	arn, err := awstest.EnableStream(e.ctx, e.raw, e.table, types.StreamViewTypeNewImage)
	if err != nil {
		t.Fatal(err)
	}
	items := []kv.Item{
		{Key: key("E#acme", "evt_01"), Value: []byte(`{"id":"evt_01"}`), Rev: 1, Expires: t0},
		{Key: key("E#acme", "evt_02"), Value: []byte{0, 1, 255}, Rev: -3},
		{Key: key("P#acme", "empty"), Value: nil, Rev: 0},
		{Key: key("P#acme", "before 1970"), Value: []byte("x"), Rev: 9, Expires: time.UnixMilli(-1500)},
	}
	e.commit(kv.Put(items[0], kv.Cond{}))
	var ops []kv.Op
	for _, it := range items[1:] {
		ops = append(ops, kv.Put(it, kv.IfAbsent(time.Time{})))
	}
	e.commit(ops...)

	sr := &awstest.StreamReader{Endpoint: awstest.StartMoto(t), Table: e.table}
	raw, err := sr.Read(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"Records": raw})
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("the stream's records are not a Lambda DynamoDB event: %v", err)
	}
	if len(ev.Records) != len(items) {
		t.Fatalf("%d stream records, want %d", len(ev.Records), len(items))
	}
	for i, rec := range ev.Records {
		if rec.EventName != "INSERT" || rec.EventSourceArn != arn {
			t.Errorf("record %d: %s from %s", i, rec.EventName, rec.EventSourceArn)
		}
		got, err := dynamo.StreamImageItem(rec.Change.NewImage)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		back, err := e.d.Get(e.ctx, got.Key)
		if err != nil || len(back) != 1 {
			t.Fatalf("Get %s: %v %v", got.Key, back, err)
		}
		w := back[0]
		if got.Key != w.Key || !bytes.Equal(got.Value, w.Value) || got.Value == nil || got.Rev != w.Rev || !got.Expires.Equal(w.Expires) {
			t.Errorf("record %d: %+v, Get reads %+v", i, got, w)
		}
	}
}

// A record as Lambda delivers it (testdata/stream-event.json, the shape of
// Lambda's sample DynamoDB event with one of the store's items) reads as
// that item.
func TestStreamImageItemLambdaEvent(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "stream-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	got, err := dynamo.StreamImageItem(ev.Records[0].Change.NewImage)
	if err != nil {
		t.Fatal(err)
	}
	want := kv.Item{Key: key("E#acme", "evt_01J9Z3K4QW8X2M5N7P9R1T3V5X"), Value: []byte(`{"id":"x"}`), Rev: 1,
		Expires: time.UnixMilli(1893553445678).UTC()}
	if got.Key != want.Key || !bytes.Equal(got.Value, want.Value) || got.Rev != want.Rev || !got.Expires.Equal(want.Expires) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// An image not in the driver's form is Corrupt, a missing one Invalid; the
// error names the key, never the value.
func TestStreamImageItemRefuses(t *testing.T) {
	const canary = "canary-stream-8e2b"
	b64 := func(s string) string {
		b, _ := json.Marshal([]byte(s))
		return string(b)
	}
	for _, c := range []struct {
		name  string
		image string // a NewImage's JSON
		code  kv.Code
		msg   string
	}{
		{"no image", `{}`, kv.Invalid, "no image of the item"},
		{"no partition key", `{"SK":{"S":"s"},"v":{"B":` + b64(canary) + `},"rev":{"N":"1"}}`, kv.Corrupt, "without a string partition and sort key"},
		{"numeric sort key", `{"PK":{"S":"p"},"SK":{"N":"1"},"v":{"B":` + b64(canary) + `},"rev":{"N":"1"}}`, kv.Corrupt, "without a string partition and sort key"},
		{"no value", `{"PK":{"S":"p"},"SK":{"S":"s"},"rev":{"N":"1"}}`, kv.Corrupt, "no binary v attribute"},
		{"string value", `{"PK":{"S":"p"},"SK":{"S":"s"},"v":{"S":"` + canary + `"},"rev":{"N":"1"}}`, kv.Corrupt, "no binary v attribute"},
		{"no rev", `{"PK":{"S":"p"},"SK":{"S":"s"},"v":{"B":` + b64(canary) + `}}`, kv.Corrupt, "no integer rev attribute"},
		{"fractional rev", `{"PK":{"S":"p"},"SK":{"S":"s"},"v":{"B":` + b64(canary) + `},"rev":{"N":"1.5"}}`, kv.Corrupt, "no integer rev attribute"},
		{"string exp", `{"PK":{"S":"p"},"SK":{"S":"s"},"v":{"B":` + b64(canary) + `},"rev":{"N":"1"},"exp":{"S":"soon"}}`, kv.Corrupt, "malformed exp attribute"},
		{"list exp", `{"PK":{"S":"p"},"SK":{"S":"s"},"v":{"B":` + b64(canary) + `},"rev":{"N":"1"},"exp":{"L":[{"N":"1"}]}}`, kv.Corrupt, "malformed exp attribute"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var image map[string]events.DynamoDBAttributeValue
			if err := json.Unmarshal([]byte(c.image), &image); err != nil {
				t.Fatal(err)
			}
			_, err := dynamo.StreamImageItem(image)
			if kv.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v (%s), want %s naming %q", err, kv.ErrorCode(err), c.code, c.msg)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the value reached the error: %v", err)
			}
		})
	}
	t.Run("attribute of no type", func(t *testing.T) {
		_, err := dynamo.StreamImageItem(map[string]events.DynamoDBAttributeValue{"PK": {}, "SK": events.NewStringAttribute("s")})
		if kv.ErrorCode(err) != kv.Corrupt {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other attributes are ignored", func(t *testing.T) {
		var image map[string]events.DynamoDBAttributeValue
		json.Unmarshal([]byte(`{"PK":{"S":"p"},"SK":{"S":"s"},"v":{"B":"eA=="},"rev":{"N":"2"},"expires_at":{"N":"7"},
			"x":{"M":{"a":{"L":[{"BOOL":true},{"NULL":true},{"SS":["a"]},{"NS":["1"]},{"BS":["eA=="]}]}}}}`), &image)
		it, err := dynamo.StreamImageItem(image)
		if err != nil || string(it.Value) != "x" || it.Rev != 2 || !it.Expires.IsZero() {
			t.Fatalf("got %+v, %v", it, err)
		}
	})
}
