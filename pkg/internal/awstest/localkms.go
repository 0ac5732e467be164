package awstest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	lkconfig "github.com/nsmithuk/local-kms/src/config"
	lkdata "github.com/nsmithuk/local-kms/src/data"
	lkhandler "github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
)

var localKMSInit sync.Once

// StartLocalKMS serves a fresh in-process local-kms (data in a temporary
// folder) on 127.0.0.1 for the test, creates a symmetric key in it, and
// returns the endpoint and the key's ID.
func StartLocalKMS(t testing.TB) (endpoint, keyID string) {
	t.Helper()
	localKMSInit.Do(func() {
		lkconfig.AWSRegion = Region
		lkconfig.AWSAccountId = "111122223333"
	})
	db := lkdata.NewDatabase(t.TempDir())
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	srv := httptest.NewServer(localKMSHandler(db, logger))
	t.Cleanup(func() {
		srv.Close()
		db.Close()
	})
	id, err := CreateKMSKey(context.Background(), NewKMSClient(srv.URL))
	if err != nil {
		t.Fatalf("local-kms: %v", err)
	}
	return srv.URL, id
}

// localKMSHandler dispatches the KMS operations the tests use to
// local-kms's request handler (the same dispatch as its own server, with a
// quiet logger).
func localKMSHandler(db *lkdata.Database, logger *logrus.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		op := target[strings.LastIndex(target, ".")+1:]
		h := lkhandler.NewRequestHandler(r, logger, db)
		var resp lkhandler.Response
		switch op {
		case "CreateKey":
			resp = h.CreateKey()
		case "DescribeKey":
			resp = h.DescribeKey()
		case "GenerateDataKey":
			resp = h.GenerateDataKey()
		case "Decrypt":
			resp = h.Decrypt()
		case "Encrypt":
			resp = h.Encrypt()
		case "DisableKey":
			resp = h.DisableKey()
		default:
			http.Error(w, fmt.Sprintf("operation %q is not served", op), http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(resp.Code)
		io.WriteString(w, resp.Body)
	})
}
