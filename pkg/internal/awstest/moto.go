package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MotoInstall is how to install the moto stand-in.
const MotoInstall = "pip install 'moto[server]==5.2.1'"

// motoScript runs moto_server ($0) on port $1 and kills its process group
// when moto exits or stdin reaches its end.
const motoScript = `exec 3<&0
"$0" -H 127.0.0.1 -p "$1" </dev/null &
m=$!
{ read -r _ <&3; kill -9 0; } &
wait "$m"
kill -9 0`

var moto struct {
	once     sync.Once
	cmd      *exec.Cmd
	stdin    io.Closer
	proxy    *httptest.Server
	endpoint string
	err      error
	log      string
}

// StartMoto returns the endpoint of this test binary's moto_server
// (DynamoDB and KMS), starting it on a free 127.0.0.1 port on first use.
// It fails the test, with the install command, if moto_server is missing.
//
// moto serves requests on threads without isolating them: two
// TransactWriteItems on one table can interleave, and a cancelled one
// restores a copy of the whole table taken before it ran, undoing writes
// that landed meanwhile. DynamoDB itself serialises conflicting
// transactions, so the endpoint returned is a proxy that passes moto one
// request at a time.
func StartMoto(t testing.TB) string {
	t.Helper()
	moto.once.Do(startMoto)
	if moto.err != nil {
		t.Fatalf("moto stand-in: %v", moto.err)
	}
	return moto.endpoint
}

func startMoto() {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		moto.err = fmt.Errorf("moto_server is not on PATH; install it with: %s", MotoInstall)
		return
	}
	port, err := freePort()
	if err != nil {
		moto.err = err
		return
	}
	logf, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		moto.err = err
		return
	}
	moto.log = logf.Name()
	// A shell, leader of its own process group, runs moto_server and ends
	// the whole group (moto_server may be a launcher that forks Python)
	// when moto exits or when its stdin closes: when Main stops it, or
	// when the test binary dies, however it dies.
	cmd := exec.Command("/bin/sh", "-c", motoScript, bin, strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		moto.err = err
		return
	}
	if err := cmd.Start(); err != nil {
		moto.err = fmt.Errorf("starting %s: %w", bin, err)
		return
	}
	moto.stdin = stdin
	moto.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			logb, _ := os.ReadFile(moto.log)
			moto.err = fmt.Errorf("moto_server exited (%v) before it was ready; its output:\n%s", err, logb)
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stopMoto()
			moto.err = fmt.Errorf("moto_server did not answer on %s within 60s (log: %s)", base, moto.log)
			return
		}
	}
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = kmsAsAWS
	moto.proxy = httptest.NewServer(serialize(rp))
	moto.endpoint = moto.proxy.URL
}

// kmsAsAWS corrects moto's answer to a Decrypt whose ciphertext is not of
// the key the request names, or names no key moto knows: moto answers
// AccessDeniedException (with no message), where KMS answers
// IncorrectKeyException (or InvalidCiphertextException for a damaged
// blob). A client must be able to tell a refused ciphertext from a refused
// permission, so the proxy answers as KMS does. moto checks no IAM
// permission, so its only other AccessDenied on Decrypt is a key policy's
// explicit Deny, which no test sets.
func kmsAsAWS(resp *http.Response) error {
	if resp.StatusCode != http.StatusBadRequest || resp.Request.Header.Get("X-Amz-Target") != "TrentService.Decrypt" {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var e struct {
		Type string `json:"__type"`
	}
	if json.Unmarshal(body, &e) == nil && e.Type == "AccessDeniedException" {
		body = []byte(`{"__type":"IncorrectKeyException","message":"The key ID in the request does not identify the KMS key that encrypted the ciphertext (moto answered AccessDeniedException)"}`)
		resp.Header.Set("X-Amzn-Errortype", "IncorrectKeyException")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

func stopMoto() {
	if moto.proxy != nil {
		moto.proxy.Close()
	}
	if moto.stdin != nil {
		moto.stdin.Close()
	}
	if moto.cmd != nil && moto.cmd.Process != nil {
		_ = syscall.Kill(-moto.cmd.Process.Pid, syscall.SIGKILL)
	}
	if moto.log != "" {
		os.Remove(moto.log)
	}
}

// Main runs the tests of a package, then stops moto if they started it,
// removes the stand-ins' binaries, and runs each of after (the cleanups of
// other helpers) before it exits. Call it from TestMain:
// func TestMain(m *testing.M) { awstest.Main(m) }.
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	stopMoto()
	removeLocalKMS()
	for _, f := range after {
		f()
	}
	os.Exit(code)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
