package apidocs_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromiumPath finds headless Chromium, or fails the test saying how to
// install it: this test never skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MOBIUS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed; it renders the interactive reference in this test. " +
		"Install it with scripts/install-chromium.sh (apt-get install -y chromium), or set MOBIUS_CHROMIUM to a Chromium binary.")
	return ""
}

// runChromium loads url in headless Chromium with args added, with every
// host but 127.0.0.1 unresolvable (the page must work with no network), and
// returns its standard output and the page's console messages.
func runChromium(t *testing.T, bin, url string, args ...string) (stdout []byte, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=15000",
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--enable-logging=stderr", "--v=0",
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, tail(errOut.String(), 4000))
	}
	for _, line := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, line)
		}
	}
	return out.Bytes(), console
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// requestLog records the paths a browser asked for.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) saw(path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.paths, path)
}

// The interactive reference renders in a real browser, offline, from this
// server alone: the secrets tag and every operation's path and summary are
// on the page, and nothing was logged to the console (no script error, no
// blocked request).
func TestDocsRenderInChromium(t *testing.T) {
	bin := chromiumPath(t)
	var log requestLog
	srv := httptest.NewServer(log.wrap(newMux())) // listens on 127.0.0.1
	defer srv.Close()
	url := srv.URL + "/docs"

	// The deep link opens one operation, to check its detail renders too.
	dom, console := runChromium(t, bin, url+"#/secrets/createSecret", "--dump-dom")
	if len(console) > 0 {
		t.Errorf("the page logged to the console:\n%s", strings.Join(console, "\n"))
	}
	// Swagger UI breaks long paths with <wbr> and zero-width spaces.
	text := strings.NewReplacer("<wbr>", "", "\u200b", "").Replace(string(dom))
	if strings.Contains(text, "Failed to load API definition") || strings.Contains(text, "errors-wrapper") {
		t.Errorf("Swagger UI reports errors loading the document")
	}
	for _, want := range []string{
		`data-tag="secrets"`, `data-tag="versions"`, `data-tag="api-keys"`, `data-tag="system"`,
		`data-path="/v1/projects/{project}/secrets"`,
		`/v1/projects/{project}/secrets/{secret}/versions/{version}/destroy`,
		"Mobius Secrets API", "Authorize",
		// the opened operation: its example request, responses and button
		"sk-example-not-a-real-key", "Try it out", `data-code="201"`, `data-code="409"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			summary := regexp.MustCompile(`class="opblock-summary-description">` + regexp.QuoteMeta(op.Summary) + `<`)
			if !summary.MatchString(text) || !strings.Contains(text, `data-path="`+path+`"`) {
				t.Errorf("the rendered page lacks %s %s (%q)", method, path, op.Summary)
			}
		}
	}
	for _, p := range []string{"/docs", "/openapi.json", "/docs/init.js", "/docs/swagger-ui/swagger-ui-bundle.js", "/docs/swagger-ui/swagger-ui.css"} {
		if !log.saw(p) {
			t.Errorf("the browser did not request %s", p)
		}
	}
	if t.Failed() {
		t.Logf("rendered DOM (end):\n%s", tail(string(dom), 3000))
	}

	// A screenshot, kept as an artifact for people to look at.
	dir := os.Getenv("MOBIUS_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "docs.png")
	os.Remove(shot)
	runChromium(t, bin, url, "--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d, want 1280x2000", b.Dx(), b.Dy())
	}
	if n := colours(img); n < 20 {
		t.Errorf("screenshot has only %d colours: the page looks blank", n)
	}
	t.Logf("screenshot: %s", shot)
}

// colours counts the distinct colours of img, up to 1000.
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= 1000 {
				return len(seen)
			}
		}
	}
	return len(seen)
}
