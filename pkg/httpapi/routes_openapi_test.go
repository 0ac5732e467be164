package httpapi

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/apidocs/apitest"
)

// TestRoutesMatchOpenAPI fails when a route is served but not documented, or
// documented but not served.
func TestRoutesMatchOpenAPI(t *testing.T) {
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`\.Handle(?:Func)?\("([A-Z]+ /[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		if m[1] != "GET /docs/" { // the reference page's assets, not an operation
			got = append(got, m[1])
		}
	}
	if len(got) < 15 {
		t.Fatalf("found only %d routes in routes.go; has its form changed?", len(got))
	}
	slices.Sort(got)
	if want := apitest.NewValidator(t).Routes(); !slices.Equal(got, want) {
		t.Errorf("routes.go serves\n%s\nthe OpenAPI document has\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
