package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/leadupdates/leadupdates/examples/dashboard"
)

func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerFSBuilt(t *testing.T) {
	build := fstest.MapFS{
		".gitkeep":                {},
		"index.html":              {Data: []byte(`<!doctype html><script src="/assets/index-abc123.js"></script>`)},
		"assets/index-abc123.js":  {Data: []byte(`console.log("app")`)},
		"assets/index-abc123.css": {Data: []byte(`body{}`)},
		"favicon.svg":             {Data: []byte(`<svg/>`)},
	}
	h := dashboard.HandlerFS(build)

	tests := []struct {
		name, method, target string
		wantStatus           int
		wantBody             string
		wantCache            string
		wantType             string
	}{
		{"root is the app", "GET", "/", 200, "/assets/index-abc123.js", "no-cache", "text/html"},
		{"index.html is the app", "GET", "/index.html", 200, "/assets/index-abc123.js", "no-cache", "text/html"},
		{"hashed asset is kept for a year", "GET", "/assets/index-abc123.js", 200, `console.log("app")`, "public, max-age=31536000, immutable", "text/javascript"},
		{"stylesheet", "GET", "/assets/index-abc123.css", 200, "body{}", "public, max-age=31536000, immutable", "text/css"},
		{"unhashed file is revalidated", "GET", "/favicon.svg", 200, "<svg/>", "no-cache", "image/svg+xml"},
		{"app route falls back to the app", "GET", "/leads/42", 200, "/assets/index-abc123.js", "no-cache", "text/html"},
		{"missing asset is 404, not the app", "GET", "/assets/index-old.js", 404, "", "", ""},
		{"missing file is 404", "GET", "/robots.txt", 404, "", "", ""},
		{"assets directory is 404", "GET", "/assets/", 404, "", "", ""},
		{"dot-dot stays inside", "GET", "/../../etc/passwd", 200, "/assets/index-abc123.js", "no-cache", "text/html"},
		{"head", "HEAD", "/", 200, "", "no-cache", "text/html"},
		{"post is refused", "POST", "/", 405, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.method, tt.target)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status: want %d, got %d", tt.wantStatus, res.StatusCode)
			}
			got := body(t, res)
			if tt.wantBody != "" && !strings.Contains(got, tt.wantBody) {
				t.Errorf("body: want it to contain %q, got %q", tt.wantBody, got)
			}
			if tt.wantCache != "" && res.Header.Get("Cache-Control") != tt.wantCache {
				t.Errorf("Cache-Control: want %q, got %q", tt.wantCache, res.Header.Get("Cache-Control"))
			}
			if tt.wantType != "" && !strings.HasPrefix(res.Header.Get("Content-Type"), tt.wantType) {
				t.Errorf("Content-Type: want %s…, got %q", tt.wantType, res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestHandlerFSNotBuilt(t *testing.T) {
	h := dashboard.HandlerFS(fstest.MapFS{".gitkeep": {}})

	res := get(t, h, "GET", "/")
	if res.StatusCode != 200 {
		t.Fatalf("status of /: want 200, got %d", res.StatusCode)
	}
	if got := body(t, res); !strings.Contains(got, "make dashboard") {
		t.Errorf("the page should say how to build the dashboard, got %q", got)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type: %q", ct)
	}
	if res := get(t, h, "GET", "/assets/index-abc.js"); res.StatusCode != 404 {
		t.Errorf("asset of an unbuilt dashboard: want 404, got %d", res.StatusCode)
	}
}

// TestHandler checks that the committed build is embedded: "/" is the app,
// and the script it names is served.
func TestHandler(t *testing.T) {
	h := dashboard.Handler()
	res := get(t, h, "GET", "/")
	if res.StatusCode != 200 {
		t.Fatalf("status of /: want 200, got %d", res.StatusCode)
	}
	page := body(t, res)
	if !strings.Contains(page, `<div id="root">`) {
		t.Fatalf("/ is not the app's index.html: %q", page)
	}
	m := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("index.html names no script under /assets/: %q", page)
	}
	if res := get(t, h, "GET", m[1]); res.StatusCode != 200 {
		t.Errorf("%s: want 200, got %d", m[1], res.StatusCode)
	}
}
