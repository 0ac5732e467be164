package awstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"
)

// LocalKMSPackage is the command that serves local-kms, in the tools module.
const LocalKMSPackage = "github.com/mobius-secrets/mobius/tools/localkms"

// localKMSAccount is the account ID in local-kms's key ARNs.
const localKMSAccount = "111122223333"

var localKMS struct {
	once sync.Once
	dir  string // holds the binary; removed by Main
	path string
	err  error
}

// localKMSBinary builds LocalKMSPackage once per test binary.
func localKMSBinary(t testing.TB) string {
	t.Helper()
	localKMS.once.Do(func() {
		dir, err := os.MkdirTemp("", "mobius-localkms-")
		if err != nil {
			localKMS.err = err
			return
		}
		localKMS.dir = dir
		localKMS.path = filepath.Join(dir, "localkms")
		localKMS.err = BuildTool(LocalKMSPackage, localKMS.path)
	})
	if localKMS.err != nil {
		t.Fatalf("local-kms stand-in: %v", localKMS.err)
	}
	return localKMS.path
}

// StartLocalKMS runs a fresh local-kms (a process of its own, data in a
// temporary folder) on a free port of 127.0.0.1 for the test, creates a
// symmetric key in it, and returns the endpoint and the key's ID. The
// process stops with the test, or when the test binary exits.
func StartLocalKMS(t testing.TB) (endpoint, keyID string) {
	t.Helper()
	bin := localKMSBinary(t)
	data := t.TempDir()
	var stdout, stderr testsupport.SyncBuffer
	cmd := exec.Command(bin, "-data", data, "-addr", "127.0.0.1:0", "-region", Region, "-account", localKMSAccount)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// It exits when its stdin closes: at Cleanup, or when this process dies.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting local-kms: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	// Registered after t.TempDir, so it runs before the folder is removed.
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	})
	const prefix = "localkms: serving "
	deadline := time.Now().Add(30 * time.Second)
	for endpoint == "" {
		if line, _, ok := strings.Cut(stdout.String(), "\n"); ok {
			var found bool
			if endpoint, found = strings.CutPrefix(line, prefix); !found {
				t.Fatalf("local-kms printed %q, want %q", line, prefix+"URL")
			}
			break
		}
		select {
		case <-exited:
			t.Fatalf("local-kms exited before it served (%v):\n%s%s", cmd.ProcessState, stdout.String(), stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("local-kms did not serve within 30s:\n%s%s", stdout.String(), stderr.String())
		}
	}
	id, err := CreateKMSKey(context.Background(), NewKMSClient(endpoint))
	if err != nil {
		t.Fatalf("local-kms: %v\n%s", err, stderr.String())
	}
	return endpoint, id
}

// removeLocalKMS removes the local-kms binary.
func removeLocalKMS() {
	if localKMS.dir != "" {
		os.RemoveAll(localKMS.dir)
	}
}
