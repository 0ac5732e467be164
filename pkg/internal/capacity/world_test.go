package capacity_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/capacity"
	"github.com/mobius-secrets/mobius/pkg/internal/standins"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// backend is a DynamoDB stand-in: open returns a client of a fresh table
// on it (with minidyn's shim in front, for where it deviates from
// DynamoDB) and the table's name.
type backend struct {
	name string
	open func(t *testing.T) (dynamo.API, string)
}

// buffered sends every request body from memory (standins.Buffered).
type buffered struct{ next http.RoundTripper }

func (b buffered) RoundTrip(req *http.Request) (*http.Response, error) {
	req, err := standins.Buffered(req)
	if err != nil {
		return nil, err
	}
	return b.next.RoundTrip(req)
}

func client(endpoint string) *dynamodb.Client {
	return awstest.NewDynamoClient(endpoint, func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: buffered{http.DefaultTransport}}
	})
}

var backends = []backend{
	{"minidyn", func(t *testing.T) (dynamo.API, string) {
		c, table := client(awstest.StartMinidyn(t)), standins.NewTable()
		if _, err := c.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
			t.Fatalf("CreateTable on minidyn: %v", err)
		}
		return standins.MinidynShim(c), table
	}},
	{"moto", func(t *testing.T) (dynamo.API, string) {
		c, table := client(awstest.StartMoto(t)), standins.NewTable()
		if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
			t.Fatalf("CreateTable on moto: %v", err)
		}
		return c, table
	}},
}

// wrappedBytes is the size of a wrapped data key in the measured items: a
// KMS CiphertextBlob is smaller (the AWS CLI's example of generate-data-key
// decodes to 167 bytes), so items here are at least as large as with KMS.
const wrappedBytes = 256

// kmsSized is the local key wrapper with every wrapped key padded to
// wrappedBytes, so that items are as large as with KMS or larger.
type kmsSized struct{ w *local.Wrapper }

func (k kmsSized) GenerateDataKey(ctx context.Context, ec map[string]string) ([]byte, []byte, error) {
	dek, wrapped, err := k.w.GenerateDataKey(ctx, ec)
	if err != nil {
		return nil, nil, err
	}
	if len(wrapped) > wrappedBytes-2 {
		return nil, nil, fmt.Errorf("a wrapped key of %d bytes does not fit %d", len(wrapped), wrappedBytes)
	}
	out := make([]byte, wrappedBytes)
	binary.BigEndian.PutUint16(out, uint16(len(wrapped)))
	copy(out[2:], wrapped)
	return dek, out, nil
}

func (k kmsSized) UnwrapDataKey(ctx context.Context, wrapped []byte, ec map[string]string) ([]byte, error) {
	if len(wrapped) != wrappedBytes || int(binary.BigEndian.Uint16(wrapped)) > wrappedBytes-2 {
		return nil, secrets.Errorf(secrets.Integrity, "wrapped data key is malformed")
	}
	return k.w.UnwrapDataKey(ctx, wrapped[2:2+binary.BigEndian.Uint16(wrapped)], ec)
}

// world is one table on one stand-in, every call to it recorded, and the
// services (API and resolve function containers) over it.
type world struct {
	t     *testing.T
	ctx   context.Context
	rec   *capacity.Recorder
	d     *dynamo.Driver
	clock *testsupport.Clock
	keys  secrets.KeyWrapper
	seeds uint64
}

func newWorld(t *testing.T, b backend) *world {
	t.Helper()
	api, table := b.open(t)
	rec := capacity.NewRecorder(api)
	kw, err := local.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &world{
		t: t, ctx: context.Background(), rec: rec, d: dynamo.New(rec, table),
		clock: testsupport.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 123_000_000, time.UTC)),
		keys:  kmsSized{kw},
	}
}

// service is a fresh process: the API function's (KeyCheckInit) or the
// resolve function's (KeyCheckVerify), with deterministic randomness, so
// that every run makes the same IDs.
func (w *world) service(mode secrets.KeyCheckMode, tune func(*secrets.Options)) *secrets.Service {
	w.seeds++
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], w.seeds)
	o := secrets.Options{
		Now: w.clock.Now, Rand: rand.NewChaCha8(seed), KeyCheck: mode,
		Logger: quiet,
	}
	if tune != nil {
		tune(&o)
	}
	return secrets.NewService(w.d, w.keys, o)
}

// quiet is the services' logger: nothing they log is measured.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// row is one measured operation.
type row struct {
	op     string
	budget budget
	calls  []capacity.Call
}

// budget is the most an operation may cost. Each is what it costs today:
// a change that adds a read or a write, or grows an item past a unit
// boundary, fails the test; lower it when a change makes the operation
// cheaper.
type budget struct {
	calls    int
	rcu, wcu float64
}

// measure runs f one second after the previous operation and returns what
// it cost. Every call must succeed.
func (w *world) measure(op string, b budget, f func() error) row {
	w.t.Helper()
	w.clock.Advance(time.Second)
	w.rec.Reset()
	if err := f(); err != nil {
		w.t.Fatalf("%s: %v", op, err)
	}
	calls := w.rec.Calls()
	for _, c := range calls {
		if c.Err != nil {
			w.t.Fatalf("%s: %s failed: %v", op, c.Op, c.Err)
		}
	}
	return row{op: op, budget: b, calls: calls}
}

// must runs a step of the setup, which is not measured.
func (w *world) must(what string, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}
