package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// dist is the committed Vite build of the app; see the package comment.
// "all:" keeps files whose names start with "_" or ".", which Vite may emit.
//
//go:embed all:dist
var dist embed.FS

// Handler returns the handler of the embedded build.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// Unreachable: "dist" is a valid path and the directory is embedded.
		panic(err)
	}
	return HandlerFS(sub)
}

// HandlerFS returns a handler serving the build in fsys, whose root holds
// index.html and assets/ (for example os.DirFS of a build elsewhere). When
// fsys has no index.html, "/" answers 200 with a page saying how to build
// the app and every other path 404.
func HandlerFS(fsys fs.FS) http.Handler {
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		return http.HandlerFunc(notBuilt)
	}
	return &handler{fsys: fsys, index: index}
}

type handler struct {
	fsys  fs.FS
	index []byte
}

// immutable is how long browsers keep files whose names change with their
// content (Vite's assets/name-hash.ext).
const immutable = "public, max-age=31536000, immutable"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" || name == "index.html" {
		h.serveIndex(w, r)
		return
	}
	f, err := h.fsys.Open(name)
	if err == nil {
		defer f.Close()
		st, err := f.Stat()
		if err == nil && !st.IsDir() {
			if rs, ok := f.(io.ReadSeeker); ok {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", immutable)
				} else {
					w.Header().Set("Cache-Control", "no-cache")
				}
				http.ServeContent(w, r, name, st.ModTime(), rs)
				return
			}
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// A missing file is a 404, so that a stale page asking for an old
	// asset fails visibly instead of receiving HTML as JavaScript; any
	// other path is one of the app's routes.
	if name == "assets" || strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
		http.NotFound(w, r)
		return
	}
	h.serveIndex(w, r)
}

// serveIndex serves index.html, which names the current assets and so must
// be revalidated on every load.
func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(h.index))
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dashboard not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>The dashboard is not built</h1>
<p>The file system this handler serves holds no <code>index.html</code>. From the repository root run</p>
<pre>make dashboard
go run ./examples/server</pre>
<p>(<code>make dashboard</code> runs <code>npm ci</code> and <code>npm run build</code> in
<code>examples/dashboard</code>; it needs Node.js 20.19 or later.) The API under <code>/api</code> and the
hub at <code>/leadupdates</code> work without it.</p>
</body></html>
`

func notBuilt(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	io.WriteString(w, notBuiltPage)
}
