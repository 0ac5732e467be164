// Package lambdatest builds the Lambda functions of functions/ and runs each
// under the AWS Lambda Runtime Interface Emulator (aws-lambda-rie, a `tool`
// of the tools module, tools/go.mod), so that tests drive the real
// `bootstrap` binaries through the real Lambda runtime API. It is for tests
// only.
//
// The emulator serves one invocation at a time: invoke sequentially.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// EmulatorPackage is the import path of the emulator's command.
const EmulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// InvokePath is the emulator's invocation endpoint; the function is always
// named "function".
const InvokePath = "/2015-03-31/functions/function/invocations"

// ModuleRoot returns the folder of this module's go.mod.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

// Build compiles the command at pkg (a path relative to the module root,
// e.g. "./functions/api") as the Lambda runtime does it: a static, stripped
// Linux binary named bootstrap, built with the lambda.norpc tag. It is
// built for this machine's architecture so the emulator can run it here;
// sam build makes the arm64 one from the same flags (functions/build.mk).
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bootstrap")
	build(tb, pkg, out)
	return out
}

func build(tb testing.TB, pkg, out string) {
	tb.Helper()
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = ModuleRoot(tb)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
}

var builds struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

// BuildOnce is Build, once per package per test binary: later calls
// return the same bootstrap. Cleanup removes them.
func BuildOnce(tb testing.TB, pkg string) string {
	tb.Helper()
	builds.Lock()
	defer builds.Unlock()
	if p, ok := builds.paths[pkg]; ok {
		return p
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "mobius-bootstraps-")
		if err != nil {
			tb.Fatal(err)
		}
		builds.dir, builds.paths = dir, map[string]string{}
	}
	out := filepath.Join(builds.dir, strconv.Itoa(len(builds.paths)), "bootstrap")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		tb.Fatal(err)
	}
	build(tb, pkg, out)
	builds.paths[pkg] = out
	return out
}

var emulator struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// EmulatorBinary builds aws-lambda-rie at the version tools/go.mod pins,
// once per test binary.
func EmulatorBinary(tb testing.TB) string {
	tb.Helper()
	emulator.once.Do(func() {
		dir, err := os.MkdirTemp("", "aws-lambda-rie-")
		if err != nil {
			emulator.err = err
			return
		}
		emulator.dir = dir
		emulator.path = filepath.Join(dir, "aws-lambda-rie")
		emulator.err = awstest.BuildTool(EmulatorPackage, emulator.path)
	})
	if emulator.err != nil {
		tb.Fatal(emulator.err)
	}
	return emulator.path
}

// Cleanup removes the emulator binary and BuildOnce's bootstraps; call it
// from TestMain after the tests.
func Cleanup() {
	if emulator.dir != "" {
		os.RemoveAll(emulator.dir)
	}
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
}

// Output collects what the emulator and the function write, safely for
// concurrent writers.
type Output = testsupport.SyncBuffer

// Emulator is one function running under aws-lambda-rie on 127.0.0.1.
type Emulator struct {
	// URL is the emulator's base URL; invocations go to URL+InvokePath.
	URL string
	// Output is the emulator's and the function's stdout and stderr.
	Output *Output
	client *http.Client
	stop   func()
}

// runScript runs the emulator ($0 with the remaining arguments) and kills
// its process group (the emulator and the function) when the emulator
// exits or when stdin reaches its end, so nothing outlives the test binary.
const runScript = `exec 3<&0
"$0" "$@" </dev/null &
m=$!
{ read -r _ <&3; kill -9 0; } &
wait "$m"
kill -9 0`

// Start runs bootstrap under the emulator with exactly env (plus PATH) as
// its environment, which the emulator passes on to the function. It
// returns once the emulator accepts connections; the function starts on
// the first invocation.
func Start(tb testing.TB, bootstrap string, env []string) *Emulator {
	tb.Helper()
	rie := EmulatorBinary(tb)
	addrs := freeAddrs(tb, 2)
	addr, apiAddr := addrs[0], addrs[1]
	out := &Output{}
	cmd := exec.Command("/bin/sh", "-c", runScript, rie,
		"--log-level", "warn",
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", apiAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting aws-lambda-rie: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := sync.OnceFunc(func() {
		stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	tb.Cleanup(stop)
	// Both listeners must be up: the function dials the runtime API as
	// soon as the first invocation starts it.
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range []string{apiAddr, addr} {
		waitListening(tb, a, exited, deadline, out)
	}
	return &Emulator{URL: "http://" + addr, Output: out, client: &http.Client{Timeout: 60 * time.Second}, stop: stop}
}

// waitListening returns once addr accepts connections; it fails the test
// if the emulator exits first or deadline passes.
func waitListening(tb testing.TB, addr string, exited <-chan struct{}, deadline time.Time, out *Output) {
	tb.Helper()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			tb.Fatalf("aws-lambda-rie exited before it listened on %s:\n%s", addr, out.String())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("aws-lambda-rie did not listen on %s within 30s:\n%s", addr, out.String())
		}
	}
}

// Stop kills the emulator and the function and waits for them to exit.
// Start arranges it at the end of the test too; calling it twice is fine.
func (e *Emulator) Stop() { e.stop() }

// FunctionEnv is the environment of function fn (a logical ID of
// template.yaml) as infra/env.json configures `sam local`, with every
// AWS_ENDPOINT_URL_* pointed at endpoint, plus the AWS SDK's region, fake
// credentials and no shared configuration files.
func FunctionEnv(tb testing.TB, fn, endpoint, region string) []string {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(ModuleRoot(tb), "infra", "env.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var envs map[string]map[string]string
	if err := json.Unmarshal(raw, &envs); err != nil {
		tb.Fatalf("infra/env.json: %v", err)
	}
	vars := map[string]string{}
	for _, section := range []string{"Parameters", fn} {
		for k, v := range envs[section] {
			vars[k] = v
		}
	}
	var out []string
	for k, v := range vars {
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			v = endpoint
		}
		out = append(out, k+"="+v)
	}
	return append(out,
		"AWS_REGION="+region, "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret-test",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30")
}

// Invoke sends one invocation and returns the emulator's status and the
// function's response payload (the result, or {"errorType",
// "errorMessage"} for a function error).
func (e *Emulator) Invoke(tb testing.TB, payload []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.URL+InvokePath, bytes.NewReader(payload))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		tb.Fatalf("invoking the emulator: %v\nits output:\n%s", err, e.Output.String())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, body
}

// Contains reports whether any of needles occurs in the output.
func (e *Emulator) Contains(needles ...string) bool {
	s := e.Output.String()
	for _, n := range needles {
		if n != "" && strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// freeAddrs returns n distinct loopback addresses nothing listens on. The
// emulator binds its own address at once but the runtime API's only on the
// first invocation, so the ports come from below the kernel's ephemeral
// range: no outgoing connection made in the meantime can take one, and
// holding each until all are chosen keeps them distinct.
func freeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const base = 10000
	if low <= base+n {
		tb.Fatalf("the ephemeral port range starts at %d; freeAddrs needs ports below it above %d", low, base)
	}
	var addrs []string
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 1000 {
			tb.Fatalf("no free loopback port in %d-%d after %d tries", base, low-1, tries)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+rand.IntN(low-base))))
		if err != nil {
			continue
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// EventDirs are where Event looks for an event, in order: the sample
// events `sam local invoke` uses, then the API function's test events.
var EventDirs = []string{filepath.Join("infra", "events"), filepath.Join("functions", "api", "testdata")}

// GrantPlaceholder stands for a minted grant in the sample resolve events:
// `sam local invoke` users paste one there (mobius grants create).
const GrantPlaceholder = "mbg_PASTE_A_GRANT_HERE"

// Event returns the event name from the first of EventDirs that has it,
// with its credential replaced by credential (an API event's bearer token;
// a resolve event's grant, when it holds GrantPlaceholder), then edited by
// edit when edit is not nil.
func Event(tb testing.TB, name, credential string, edit func(map[string]any)) []byte {
	tb.Helper()
	var b []byte
	err := os.ErrNotExist
	for _, dir := range EventDirs {
		if b, err = os.ReadFile(filepath.Join(ModuleRoot(tb), dir, name)); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("event %s: %v", name, err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if h, ok := ev["headers"].(map[string]any); ok && h["authorization"] != nil && credential != "" {
		h["authorization"] = "Bearer " + credential
	}
	if ev["grant"] == GrantPlaceholder && credential != "" {
		ev["grant"] = credential
	}
	if edit != nil {
		edit(ev)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// EnvValue returns the value of key in env (KEY=value entries), failing the
// test if env does not set it.
func EnvValue(tb testing.TB, env []string, key string) string {
	tb.Helper()
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	tb.Fatalf("the function's environment sets no %s", key)
	return ""
}

// StandIns makes, on the stand-in at endpoint, what a function configured
// with env expects, as the README's `sam local` steps make it: the table
// MOBIUS_TABLE and a KMS key under the alias MOBIUS_KMS_KEY_ID. It returns
// a Service on them, for seeding.
func StandIns(tb testing.TB, endpoint string, env []string) *secrets.Service {
	tb.Helper()
	ctx := context.Background()
	table, keyRef := EnvValue(tb, env, "MOBIUS_TABLE"), EnvValue(tb, env, "MOBIUS_KMS_KEY_ID")
	ddb := awstest.NewDynamoClient(endpoint)
	if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
		tb.Fatal(err)
	}
	kc := awstest.NewKMSClient(endpoint)
	keyID, err := awstest.CreateKMSKey(ctx, kc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := kc.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(keyRef), TargetKeyId: aws.String(keyID)}); err != nil {
		tb.Fatal(err)
	}
	// The key check comes first, as the API function's first request
	// would write it into the new table.
	return secrets.NewService(dynamo.New(ddb, table), kms.New(kc, keyRef), secrets.Options{KeyCheck: secrets.KeyCheckInit})
}

// Staller is a stand-in for a dependency that has stalled: it accepts TCP
// connections on 127.0.0.1 and never answers, reading and discarding what
// it is sent until the test ends.
type Staller struct {
	// URL is http://ADDR, for an AWS_ENDPOINT_URL_* variable.
	URL   string
	conns atomic.Int64
}

// StartStaller starts a Staller for the test.
func StartStaller(tb testing.TB) *Staller {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Staller{URL: "http://" + l.Addr().String()}
	var mu sync.Mutex
	var open []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	return s
}

// Conns returns how many connections the Staller has accepted: one for
// each attempt of a client that does not reuse a stalled connection.
func (s *Staller) Conns() int { return int(s.conns.Load()) }

// StartFaultProxy serves on 127.0.0.1 a proxy to the AWS JSON stand-in at
// target that answers every request for an operation in codes (the
// X-Amz-Target suffix, e.g. "Decrypt") with that error code, HTTP 400 as
// AWS answers client errors, and passes the rest on. It returns the
// proxy's URL.
func StartFaultProxy(tb testing.TB, target string, codes map[string]string) string {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := r.Header.Get("X-Amz-Target")
		if code, ok := codes[t[strings.LastIndex(t, ".")+1:]]; ok {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-Errortype", code)
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"injected by the test"}`, code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// WaitFor waits up to within for the output to satisfy ok (what the
// function writes reaches the buffer a little after its answer), and
// reports whether it did.
func (e *Emulator) WaitFor(within time.Duration, ok func(output string) bool) bool {
	deadline := time.Now().Add(within)
	for {
		if ok(e.Output.String()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
