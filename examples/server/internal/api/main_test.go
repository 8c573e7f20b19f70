package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	kitlog "github.com/go-kit/log"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/api"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
	"github.com/leadupdates/leadupdates/internal/testdb"
	"github.com/leadupdates/leadupdates/notify"
)

// The real collaborators satisfy the API's interfaces.
var (
	_ hub.Authenticator = (*jwtauth.Authenticator)(nil)
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// GORM's PrepareStmt cache starts an expiry goroutine it never stops.
		goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"))
}

// eachDB runs f once on PostgreSQL and once on SQLite, each with a fresh,
// migrated database.
func eachDB(t *testing.T, f func(t *testing.T, db *gorm.DB)) {
	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
		f(t, migrated(t, d.Open))
	})
}

// migrated opens a fresh database with open and creates the leads table.
func migrated(t testing.TB, open func(testing.TB) gorm.Dialector) *gorm.DB {
	t.Helper()
	db := testdb.Open(t, open(t))
	if err := db.AutoMigrate(&lead.Lead{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// processor is a fake Processor recording the leads it was asked to start.
type processor struct {
	mu      sync.Mutex
	started []int64
	err     error
}

func (p *processor) Start(_ context.Context, id int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.started = append(p.started, id)
	return nil
}

// statusError is an error choosing its HTTP status, as the workflow's are.
type statusError struct {
	status int
	msg    string
}

func (e statusError) Error() string   { return e.msg }
func (e statusError) HTTPStatus() int { return e.status }

// metricsSource is a fake metrics.Source.
type metricsSource struct {
	d   notify.Metrics
	err error
}

func (m *metricsSource) Snapshot(context.Context) (notify.Metrics, error) { return m.d, m.err }

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is an API on a database, with tokens for admin, alice and bob
// (sales) and nobody (no role).
type env struct {
	db      *gorm.DB
	mux     *http.ServeMux
	proc    *processor
	metrics *metricsSource
	log     *syncBuffer
	tokens  map[string]string
}

// newEnv returns an env on db; opts change the API's Config.
func newEnv(t testing.TB, db *gorm.DB, opts ...func(*api.Config)) *env {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	signer, err := jwtauth.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, mux: http.NewServeMux(), proc: &processor{}, metrics: &metricsSource{},
		log: &syncBuffer{}, tokens: map[string]string{}}
	for sub, roles := range map[string][]string{
		"admin": {access.RoleAdmin}, "alice": {access.RoleSales}, "bob": {access.RoleSales}, "nobody": nil,
	} {
		if e.tokens[sub], err = signer.Issue(sub, roles, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	cfg := api.Config{DB: db, Auth: auth, Workflow: e.proc, Metrics: e.metrics, Logger: kitlog.NewLogfmtLogger(e.log)}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Mount(e.mux)
	return e
}

// response is a recorded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errBody is the API's error body.
type errBody struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

func (r response) err(t *testing.T) errBody {
	t.Helper()
	var b errBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error == "" {
		t.Fatalf("not an error body (%v): %s", err, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return b
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request as who ("" = without a token).
func (e *env) do(t testing.TB, who, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, path, rd)
	if who != "" {
		tok, ok := e.tokens[who]
		if !ok {
			tok = who // a literal (bad) token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// want fails unless r has status.
func (r response) want(t testing.TB, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// wantErr fails unless r is an error with status naming field.
func (r response) wantErr(t *testing.T, status int, field string) errBody {
	t.Helper()
	r.want(t, status)
	b := r.err(t)
	if b.Field != field {
		t.Fatalf("field %q, want %q (%s)", b.Field, field, b.Error)
	}
	return b
}

// create stores a lead through the API as who and returns its view.
func (e *env) create(t testing.TB, who string, body map[string]any) lead.View {
	t.Helper()
	var v lead.View
	e.do(t, who, "POST", "/api/leads", body).want(t, http.StatusCreated).decode(t, &v)
	return v
}

// count returns the number of rows in the leads table, deleted included.
func count(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Unscoped().Model(&lead.Lead{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func path(id int64, suffix ...string) string {
	return fmt.Sprintf("/api/leads/%d", id) + strings.Join(suffix, "")
}
