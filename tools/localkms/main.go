// Command localkms serves KMS for the tests of the main module: local-kms
// (github.com/nsmithuk/local-kms) behind the operations the tests use,
// CreateKey, DescribeKey, GenerateDataKey, Decrypt, Encrypt, DisableKey,
// EnableKey and ScheduleKeyDeletion; any other is answered 501. Unlike
// moto, local-kms refuses to make a data key with a disabled,
// pending-deletion or signing key, as KMS does.
//
// Usage:
//
//	localkms -data DIR [-addr 127.0.0.1:0] [-region us-east-1] [-account 111122223333]
//
// It keeps its keys in DIR, logs nothing, prints one line
// "localkms: serving http://HOST:PORT" on standard output once it accepts
// connections, and exits when its standard input reaches its end (the
// process that started it closed it, or exited) or on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	lkconfig "github.com/nsmithuk/local-kms/src/config"
	lkdata "github.com/nsmithuk/local-kms/src/data"
	lkhandler "github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localkms:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("localkms", flag.ContinueOnError)
	data := fs.String("data", "", "the folder of the key database (required)")
	addr := fs.String("addr", "127.0.0.1:0", "the address to listen on; port 0 picks a free one")
	region := fs.String("region", "us-east-1", "the region in key ARNs")
	account := fs.String("account", "111122223333", "the account ID in key ARNs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || fs.NArg() > 0 {
		return errors.New("usage: localkms -data DIR [-addr HOST:PORT] [-region R] [-account ID]")
	}
	lkconfig.AWSRegion = *region
	lkconfig.AWSAccountId = *account
	lkconfig.DatabasePath = *data
	db, err := openDatabase(*data)
	if err != nil {
		return err
	}
	defer db.Close()
	logger := logrus.New()
	logger.SetOutput(io.Discard)

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(db, logger)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Fprintf(stdout, "localkms: serving http://%s\n", l.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case err := <-served:
		return err
	case <-eof:
	case <-ctx.Done():
	}
	srv.Close()
	return nil
}

// openDatabase opens (or creates) the key database in dir; local-kms
// panics where it cannot.
func openDatabase(dir string) (db *lkdata.Database, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("opening the key database in %s: %v", dir, r)
		}
	}()
	return lkdata.NewDatabase(dir), nil
}

// handler dispatches each KMS operation it serves (the X-Amz-Target
// suffix) to local-kms's request handler, as local-kms's own server does.
func handler(db *lkdata.Database, logger *logrus.Logger) http.Handler {
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
		case "EnableKey":
			resp = h.EnableKey()
		case "ScheduleKeyDeletion":
			resp = h.ScheduleKeyDeletion()
		default:
			http.Error(w, fmt.Sprintf("operation %q is not served", op), http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(resp.Code)
		io.WriteString(w, resp.Body)
	})
}
