// Command genspec writes pkg/apidocs/openapi.json, the served form of the
// hand-edited pkg/apidocs/openapi.yaml, and openapi.json.gz, the same
// compressed, which is what the binaries embed (a sixth of the size). With
// -check it writes nothing and exits 1 if either committed file does not
// hold the current conversion.
//
// Run it through `go generate ./pkg/apidocs`.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mobius-secrets/mobius/pkg/apidocs/internal/yamljson"
)

func main() {
	check := flag.Bool("check", false, "exit 1 if openapi.json differs from the conversion of openapi.yaml, writing nothing")
	dir := flag.String("dir", ".", "the pkg/apidocs directory (go generate runs in it)")
	flag.Parse()
	if err := run(*dir, *check); err != nil {
		fmt.Fprintln(os.Stderr, "genspec:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	src, err := os.ReadFile(filepath.Join(dir, "openapi.yaml"))
	if err != nil {
		return err
	}
	out, err := yamljson.Convert(src)
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, "openapi.json")
	if check {
		cur, err := os.ReadFile(dst)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, out) {
			return fmt.Errorf("%s is not the conversion of openapi.yaml; run 'go generate ./pkg/apidocs'", dst)
		}
		gz, err := os.Open(dst + ".gz")
		if err != nil {
			return err
		}
		defer gz.Close()
		r, err := gzip.NewReader(gz)
		if err != nil {
			return fmt.Errorf("%s.gz: %w", dst, err)
		}
		if cur, err = io.ReadAll(r); err != nil || !bytes.Equal(cur, out) {
			return fmt.Errorf("%s.gz does not hold the conversion of openapi.yaml (%v); run 'go generate ./pkg/apidocs'", dst, err)
		}
		return nil
	}
	var gz bytes.Buffer
	w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	w.Write(out)
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return err
	}
	return os.WriteFile(dst+".gz", gz.Bytes(), 0o644)
}
