package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// crashLease is the Idempotency-Key lease of the servers under test: a
// claim left by a killed request blocks its key this long.
const crashLease = 2 * time.Second

// idemRequest is one PATCH rotation sent with an Idempotency-Key.
type idemRequest struct {
	secret, key string
	body        []byte
	digest      string
	// status and reply are the first attempt's answer; 0 and nil when it
	// got none (the server was killed with it in flight).
	status int
	reply  []byte
}

// idemAnswer is one answer to a request.
type idemAnswer struct {
	status   int
	body     []byte
	replayed bool
	retry    string // Retry-After
}

func sendIdempotent(ctx context.Context, hc *http.Client, base, apiKey string, r *idemRequest) (idemAnswer, error) {
	rq, _ := http.NewRequestWithContext(ctx, "PATCH", base+"/"+r.secret, bytes.NewReader(r.body))
	rq.Header.Set("Authorization", "Bearer "+apiKey)
	rq.Header.Set("Content-Type", "application/json")
	rq.Header.Set("Idempotency-Key", r.key)
	resp, err := hc.Do(rq)
	if err != nil {
		return idemAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return idemAnswer{}, err
	}
	return idemAnswer{status: resp.StatusCode, body: body, replayed: resp.Header.Get("Idempotent-Replayed") == "true", retry: resp.Header.Get("Retry-After")}, nil
}

// crashTarget is a store `mobius serve` runs on in the test.
type crashTarget struct {
	env  []string // the server's environment
	data string
	// firstKey makes the API key of project default, given the first
	// server's start.
	firstKey func(t *testing.T, p *testsupport.Serve) string
}

// TestIdempotencySurvivesSIGKILL: `mobius serve`, on the embedded store
// and on DynamoDB and KMS (moto), is killed with SIGKILL at random moments
// while clients send rotations with Idempotency-Key; after each restart
// every request whose answer was lost is retried, identical, until it
// succeeds. Invariants: a retry while the dead request's lease holds is
// 409 with Retry-After and succeeds once that time has passed; a retry of
// an answered request replays its answer byte for byte and writes
// nothing; and in the end every request wrote exactly one version.
func TestIdempotencySurvivesSIGKILL(t *testing.T) {
	bin := buildMobius(t)
	t.Run("embedded store", func(t *testing.T) {
		home := t.TempDir()
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
			"XDG_DATA_HOME=" + filepath.Join(home, "xdg-data"), "MOBIUS_IDEMPOTENCY_LEASE=" + crashLease.String()}
		crashLoop(t, bin, crashTarget{env: env, data: filepath.Join(home, "data"), firstKey: func(t *testing.T, p *testsupport.Serve) string {
			k := strings.Trim(p.Exports["MOBIUS_API_KEY"], `'"`)
			if k == "" {
				t.Fatalf("no API key printed on the first start\n%s", p.Stderr)
			}
			return k
		}})
	})
	t.Run("DynamoDB and KMS", func(t *testing.T) {
		ctx := context.Background()
		ep := awstest.StartMoto(t)
		table := fmt.Sprintf("mobius-idem-crash-%d", time.Now().UnixNano())
		if err := dynamo.CreateTable(ctx, awstest.NewDynamoClient(ep), table); err != nil {
			t.Fatal(err)
		}
		kmsKey, err := awstest.CreateKMSKey(ctx, awstest.NewKMSClient(ep))
		if err != nil {
			t.Fatal(err)
		}
		home := t.TempDir()
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
			"MOBIUS_IDEMPOTENCY_LEASE=" + crashLease.String(),
			"MOBIUS_STORE=dynamodb", "MOBIUS_TABLE=" + table, "MOBIUS_KMS_KEY_ID=" + kmsKey,
			"AWS_REGION=" + awstest.Region, "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret-test",
			"AWS_ENDPOINT_URL_DYNAMODB=" + ep, "AWS_ENDPOINT_URL_KMS=" + ep,
			"AWS_CONFIG_FILE=" + filepath.Join(home, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "aws-credentials")}
		crashLoop(t, bin, crashTarget{env: env, data: filepath.Join(home, "unused"), firstKey: func(t *testing.T, _ *testsupport.Serve) string {
			cmd := exec.Command(bin, "admin", "create-key", "--project", "default", "-o", "json")
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("admin create-key: %v", err)
			}
			var k struct{ Key string }
			if err := json.Unmarshal(out, &k); err != nil || k.Key == "" {
				t.Fatalf("admin create-key printed %q: %v", out, err)
			}
			return k.Key
		}})
	})
}

func crashLoop(t *testing.T, bin string, target crashTarget) {
	iterations := envInt("CRASH_ITERATIONS", 3)
	// At least that many kills, and more until some retry has met a held
	// lease (which needs a kill between a request's claim and its write).
	maxKills := max(10*iterations, 30)
	const workers = 4
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	hc := &http.Client{Timeout: 20 * time.Second}
	ctx := context.Background()
	var (
		apiKey     string
		sent       []*idemRequest // every request, in the order made
		inDoubt    []*idemRequest // sent, and no answer yet
		leaseWaits int            // retries answered 409 while a lease held
		replays    int            // retries that replayed the first attempt's answer
		fresh      int            // lost requests a retry ran for the first time
	)
	start := func() *testsupport.Serve {
		return testsupport.StartServe(t, bin, target.data, target.env, "")
	}
	// retry sends r again until it succeeds, waiting out held leases.
	retry := func(base string, r *idemRequest) {
		t.Helper()
		for attempt := 0; ; attempt++ {
			a, err := sendIdempotent(ctx, hc, base, apiKey, r)
			if err != nil {
				t.Fatalf("retry of %s: %v", r.key, err)
			}
			if a.status == http.StatusConflict {
				secs, err := strconv.Atoi(a.retry)
				if err != nil || secs < 1 || time.Duration(secs)*time.Second > crashLease+time.Second || !strings.Contains(string(a.body), "still in progress") {
					t.Fatalf("retry of %s: 409 with Retry-After %q: %s", r.key, a.retry, a.body)
				}
				if attempt > 0 {
					t.Fatalf("retry of %s: still 409 after waiting the Retry-After it gave", r.key)
				}
				leaseWaits++
				time.Sleep(time.Duration(secs)*time.Second + 100*time.Millisecond)
				continue
			}
			if a.status != http.StatusOK {
				t.Fatalf("retry of %s: %d %s", r.key, a.status, a.body)
			}
			switch {
			case r.status == http.StatusOK && (!a.replayed || !bytes.Equal(a.body, r.reply)):
				t.Fatalf("retry of the answered %s: replayed %v, body %s, first answer %s", r.key, a.replayed, a.body, r.reply)
			case a.replayed:
				replays++
			default:
				fresh++
			}
			r.status, r.reply = a.status, a.body
			return
		}
	}

	names := make([]string, workers)
	kills := 0
	for kills < iterations || (leaseWaits == 0 && kills < maxKills) {
		p := start()
		if kills == 0 {
			apiKey = target.firstKey(t, p)
		}
		base := p.Endpoint + "/v1/projects/default/secrets"
		if kills == 0 {
			for g := range workers {
				names[g] = fmt.Sprintf("idem-%d", g)
				if status, err := call(ctx, hc, "POST", base, apiKey, map[string]any{"name": names[g], "values": map[string]string{"v": "initial"}}, nil); err != nil || status != 201 {
					t.Fatalf("create %s: %d %v", names[g], status, err)
				}
			}
		}
		// The requests the last kill left without an answer, and a few that
		// were answered: the same request again.
		for _, r := range inDoubt {
			retry(base, r)
		}
		inDoubt = nil
		for range min(3, len(sent)) {
			r := sent[rng.IntN(len(sent))]
			if r.status == http.StatusOK {
				retry(base, r)
			}
		}

		lctx, cancel := context.WithCancel(ctx)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; lctx.Err() == nil; i++ {
					r := &idemRequest{secret: names[g], key: fmt.Sprintf("k%d-%d-%d", kills, g, i)}
					vals := map[string]string{"v": r.key}
					r.body, _ = json.Marshal(map[string]any{"values": vals})
					r.digest = secrets.Digest(vals)
					mu.Lock()
					sent = append(sent, r)
					mu.Unlock()
					a, err := sendIdempotent(lctx, hc, base, apiKey, r)
					if err != nil {
						mu.Lock()
						inDoubt = append(inDoubt, r)
						mu.Unlock()
						return // the server is gone
					}
					if a.status != http.StatusOK || a.replayed {
						t.Errorf("%s: first attempt answered %d (replayed %v): %s", r.key, a.status, a.replayed, a.body)
						return
					}
					r.status, r.reply = a.status, a.body
				}
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.Done()
		cancel()
		wg.Wait()
		kills++
		if t.Failed() {
			return
		}
	}

	p := start()
	base := p.Endpoint + "/v1/projects/default/secrets"
	for _, r := range inDoubt {
		retry(base, r)
	}
	// Exactly once: each request's values are one version, the initial
	// values another, and there is nothing else.
	want := map[string]map[string]bool{}
	for _, r := range sent {
		if want[r.secret] == nil {
			want[r.secret] = map[string]bool{secrets.Digest(map[string]string{"v": "initial"}): true}
		}
		want[r.secret][r.digest] = true
	}
	for _, name := range names {
		seen := map[string]int{}
		enabled := 0
		var s api.Secret
		if status, err := call(ctx, hc, "GET", base+"/"+name, apiKey, nil, &s); err != nil || status != 200 {
			t.Fatalf("get %s: %d %v", name, status, err)
		}
		token := ""
		total := 0
		for {
			var page api.VersionList
			url := base + "/" + name + "/versions?limit=1000"
			if token != "" {
				url += "&page_token=" + token
			}
			if status, err := call(ctx, hc, "GET", url, apiKey, nil, &page); err != nil || status != 200 {
				t.Fatalf("versions of %s: %d %v", name, status, err)
			}
			for _, v := range page.Versions {
				seen[v.SHA256]++
				total++
				if v.State == "ENABLED" {
					enabled++
				}
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		for d, n := range seen {
			if !want[name][d] {
				t.Errorf("%s: a version holds values no request sent", name)
			} else if n != 1 {
				t.Errorf("%s: a request was written %d times", name, n)
			}
		}
		for d := range want[name] {
			if seen[d] == 0 {
				t.Errorf("%s: a request that succeeded on retry has no version", name)
			}
		}
		if total != s.LatestVersion || enabled != 1 {
			t.Errorf("%s: %d versions, latest %d, %d ENABLED", name, total, s.LatestVersion, enabled)
		}
	}
	p.Stop(t, syscall.SIGTERM)
	t.Logf("idempotency under SIGKILL: %d kills, %d requests, %d retries met a held lease (409, Retry-After), %d replayed the first answer, %d ran a lost request once",
		kills, len(sent), leaseWaits, replays, fresh)
	if leaseWaits == 0 {
		t.Errorf("in %d kills no retry met a held lease: the 409 and Retry-After path went untested", kills)
	}
	if replays == 0 {
		t.Error("no retry replayed a first answer")
	}
}
