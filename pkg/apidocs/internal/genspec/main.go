// Command genspec writes pkg/apidocs/openapi.json, the served form of the
// hand-edited pkg/apidocs/openapi.yaml. With -check it writes nothing and
// exits 1 if the committed JSON is not the current conversion.
//
// Run it through `go generate ./pkg/apidocs`.
package main

import (
	"bytes"
	"flag"
	"fmt"
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
		return nil
	}
	return os.WriteFile(dst, out, 0o644)
}
