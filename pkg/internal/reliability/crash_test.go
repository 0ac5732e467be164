package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// buildMobius builds cmd/mobius into a temporary folder of the test.
func buildMobius(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mobius")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mobius-secrets/mobius/cmd/mobius").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProc is one running `mobius serve`, with the first API key
// (printed on the first start only).
type serveProc struct {
	*testsupport.Serve
	key string
}

func startMobius(t *testing.T, bin, home, data string) *serveProc {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "XDG_DATA_HOME=" + filepath.Join(home, "xdg-data")}
	s := testsupport.StartServe(t, bin, data, env, "")
	return &serveProc{Serve: s, key: strings.Trim(s.Exports["MOBIUS_API_KEY"], `'"`)}
}

// ack is one acknowledged write: version n of secret name holds digest.
type ack struct {
	name   string
	n      int
	digest string
}

func call(ctx context.Context, c *http.Client, method, url, key string, body any, out any) (int, error) {
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	rq, _ := http.NewRequestWithContext(ctx, method, url, rd)
	rq.Header.Set("Authorization", "Bearer "+key)
	rq.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(rq)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return 0, err
		}
	}
	return resp.StatusCode, nil
}

// SIGKILL at a random moment under concurrent writes loses no acknowledged
// write and leaves no half-written secret; the file opens cleanly after.
func TestCrashSafetySIGKILL(t *testing.T) {
	iterations := envInt("CRASH_ITERATIONS", 3)
	bin := buildMobius(t)
	home := t.TempDir()
	data := filepath.Join(home, "data")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var (
		mu       sync.Mutex
		acks     []ack
		attempts = map[string]map[string]bool{} // name → digests ever sent
	)
	key := ""
	hc := &http.Client{Timeout: 10 * time.Second}
	writes := 0
	for it := 0; it < iterations; it++ {
		p := startMobius(t, bin, home, data)
		if it == 0 {
			if p.key == "" {
				t.Fatalf("no API key printed on the first start\n%s", p.Stderr)
			}
			key = p.key
		}
		base := p.Endpoint + "/v1/projects/default/secrets"
		verify(t, hc, base, key, acks, attempts)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				name := fmt.Sprintf("w%d-%d", it, g)
				created := false
				for i := 0; ctx.Err() == nil; i++ {
					vals := map[string]string{"v": fmt.Sprintf("value-%d-%d-%d", it, g, i)}
					d := secrets.Digest(vals)
					mu.Lock()
					if attempts[name] == nil {
						attempts[name] = map[string]bool{}
					}
					attempts[name][d] = true
					mu.Unlock()
					var s api.Secret
					var status int
					var err error
					if !created {
						status, err = call(ctx, hc, "POST", base, key, map[string]any{"name": name, "values": vals}, &s)
					} else {
						status, err = call(ctx, hc, "PATCH", base+"/"+name, key, map[string]any{"values": vals}, &s)
					}
					if err != nil {
						return // the server is gone
					}
					if status == 201 || status == 200 {
						created = true
						mu.Lock()
						acks = append(acks, ack{name, s.LatestVersion, d})
						writes++
						mu.Unlock()
					}
				}
			}(g)
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.Done()
		cancel()
		wg.Wait()
	}
	p := startMobius(t, bin, home, data)
	losses := verify(t, hc, p.Endpoint+"/v1/projects/default/secrets", key, acks, attempts)
	p.Cmd.Process.Signal(syscall.SIGTERM)
	<-p.Done()
	db, err := bbolt.Open(filepath.Join(data, "mobius.db"), 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("the data file does not open: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt consistency check: %v", err)
	}
	t.Logf("crash safety: %d SIGKILL iterations, %d acknowledged writes, %d lost", iterations, writes, losses)
	if writes == 0 {
		t.Fatal("no write was acknowledged before the kills")
	}
}

// verify checks every acknowledged write is present with its digest, and
// every secret is whole: versions 1..latest, exactly one ENABLED (the
// latest), each holding a value some writer sent. It returns the losses.
func verify(t *testing.T, hc *http.Client, base, key string, acks []ack, attempts map[string]map[string]bool) int {
	t.Helper()
	ctx := context.Background()
	losses := 0
	for _, a := range acks {
		var v api.Version
		status, err := call(ctx, hc, "GET", fmt.Sprintf("%s/%s/versions/%d", base, a.name, a.n), key, nil, &v)
		if err != nil || status != 200 || v.SHA256 != a.digest {
			losses++
			t.Errorf("acknowledged write lost: %s v%d: status %d, err %v, sha256 %q want %q", a.name, a.n, status, err, v.SHA256, a.digest)
		}
	}
	var list api.SecretList
	if status, err := call(ctx, hc, "GET", base+"?limit=1000", key, nil, &list); err != nil || status != 200 {
		t.Fatalf("list after restart: %d %v", status, err)
	}
	for _, s := range list.Secrets {
		var vl api.VersionList
		if status, err := call(ctx, hc, "GET", base+"/"+s.Name+"/versions?limit=1000", key, nil, &vl); err != nil || status != 200 {
			t.Errorf("%s: versions: %d %v", s.Name, status, err)
			continue
		}
		if len(vl.Versions) != s.LatestVersion || s.LatestVersion < 1 {
			t.Errorf("%s: latest %d but %d versions", s.Name, s.LatestVersion, len(vl.Versions))
		}
		enabled := 0
		for i, v := range vl.Versions {
			if v.Number != s.LatestVersion-i {
				t.Errorf("%s: version %d at position %d of latest %d", s.Name, v.Number, i, s.LatestVersion)
			}
			if v.State == "ENABLED" {
				enabled++
				if s.CurrentVersion == nil || *s.CurrentVersion != v.Number {
					t.Errorf("%s: ENABLED version %d is not the current one", s.Name, v.Number)
				}
			}
			if attempts[s.Name] != nil && !attempts[s.Name][v.SHA256] {
				t.Errorf("%s v%d: a value no writer sent", s.Name, v.Number)
			}
		}
		if enabled != 1 {
			t.Errorf("%s: %d ENABLED versions", s.Name, enabled)
		}
	}
	return losses
}
