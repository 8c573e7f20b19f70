package pgsession_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/pgsession"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
)

// TestMain needs PostgreSQL (TEST_DATABASE_URL, by default the local test
// database) and fails the run if a goroutine outlives the tests.
func TestMain(m *testing.M) {
	db, err := sql.Open("pgx", dsn())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgsession tests need PostgreSQL at %s: %v\nStart it with `make testenv` or set TEST_DATABASE_URL.\n", dsn(), err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

func dsn() string {
	return testdb.DSN()
}

// newStore returns a Store over a table of its own, dropped at the end.
func newStore(t testing.TB) (*pgsession.Store, *sql.DB, string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn())
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := "hub_sessions_test_" + hex.EncodeToString(b[:])
	st, err := pgsession.New(t.Context(), db, pgsession.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP TABLE IF EXISTS " + table)
		db.Close()
	})
	return st, db, table
}

func session(token, owner string, epoch int64) hub.Session {
	return hub.Session{
		TokenHash: hub.HashToken(token), ConnectionID: "conn-1", UserID: "alice", Protocol: "json",
		Groups: []string{"LeadUpdates", "Lead_7"}, Acked: 12, Unacked: 3334, Position: 1<<63 + 5, Received: 4,
		Owner: owner, Epoch: epoch, Expires: time.Now().Add(time.Minute),
	}
}

func TestClaimTakesOver(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := t.Context()
	s := session("tok", "one", 0)
	if err := st.Save(ctx, []hub.Session{s}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Claim(ctx, hub.HashToken("tok"), "alice", "two", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := s
	want.Owner, want.Epoch = "two", 1
	got.Expires, want.Expires = time.Time{}, time.Time{}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claimed\n%+v\nwant\n%+v", got, want)
	}
	// Claiming again by the same owner keeps the epoch.
	if again, err := st.Claim(ctx, hub.HashToken("tok"), "alice", "two", time.Now()); err != nil || again.Epoch != 1 {
		t.Fatalf("second claim: epoch %d, %v", again.Epoch, err)
	}

	// The old owner's saves and delete no longer touch it.
	stale := s
	stale.Acked = 99
	if err := st.Save(ctx, []hub.Session{stale}); err != nil {
		t.Fatal(err)
	}
	if deleted, err := st.Delete(ctx, hub.HashToken("tok"), "one", 0); err != nil || deleted {
		t.Fatalf("the old owner deleted it: %v %v", deleted, err)
	}
	now, err := st.Claim(ctx, hub.HashToken("tok"), "alice", "two", time.Now())
	if err != nil || now.Acked != 12 {
		t.Fatalf("after the old owner's save: acked %d, %v", now.Acked, err)
	}
	// The new owner's save and delete do.
	mine := s
	mine.Owner, mine.Epoch, mine.Acked, mine.Groups = "two", 1, 20, nil
	if err := st.Save(ctx, []hub.Session{mine}); err != nil {
		t.Fatal(err)
	}
	if now, _ = st.Claim(ctx, hub.HashToken("tok"), "alice", "two", time.Now()); now.Acked != 20 || len(now.Groups) != 0 {
		t.Fatalf("after the owner's save: %+v", now)
	}
	if deleted, err := st.Delete(ctx, hub.HashToken("tok"), "two", 1); err != nil || !deleted {
		t.Fatalf("the owner could not delete it: %v %v", deleted, err)
	}
	if _, err := st.Claim(ctx, hub.HashToken("tok"), "alice", "two", time.Now()); !errors.Is(err, hub.ErrNoSession) {
		t.Fatalf("claim after delete: %v", err)
	}
}

func TestClaimRefuses(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := t.Context()
	expired := session("old", "one", 0)
	expired.Expires = time.Now().Add(-time.Second)
	if err := st.Save(ctx, []hub.Session{session("tok", "one", 0), expired}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, user string
		want              error
	}{
		{"unknown token", "nope", "alice", hub.ErrNoSession},
		{"expired", "old", "alice", hub.ErrNoSession},
		{"another user", "tok", "bob", hub.ErrSessionUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := st.Claim(ctx, hub.HashToken(tt.token), tt.user, "two", time.Now().Add(time.Minute)); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Bob's attempt claimed nothing: the owner is unchanged.
	got, err := st.Claim(ctx, hub.HashToken("tok"), "alice", "one", time.Now())
	if err != nil || got.Epoch != 0 {
		t.Fatalf("after bob: epoch %d, %v", got.Epoch, err)
	}
	if n, err := st.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want the expired one", n, err)
	}
}

func TestStoresNoToken(t *testing.T) {
	st, db, table := newStore(t)
	const token = "the-secret-connection-token"
	if err := st.Save(t.Context(), []hub.Session{session(token, "one", 0)}); err != nil {
		t.Fatal(err)
	}
	var dump string
	if err := db.QueryRow("SELECT string_agg(t::text, '') FROM " + table + " t").Scan(&dump); err != nil {
		t.Fatal(err)
	}
	h := hub.HashToken(token)
	if want := hex.EncodeToString(h[:]); !strings.Contains(dump, want) {
		t.Fatalf("the row does not hold the token's hash: %s", dump)
	}
	if strings.Contains(dump, token) || strings.Contains(dump, hex.EncodeToString([]byte(token))) {
		t.Fatalf("the row holds the token: %s", dump)
	}
}

func TestSaveBatch(t *testing.T) {
	st, db, table := newStore(t)
	var ss []hub.Session
	for i := range 500 {
		ss = append(ss, session(fmt.Sprint(i), "one", 0))
	}
	if err := st.Save(t.Context(), ss); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 500 {
		t.Fatalf("%d rows, %v", n, err)
	}
}

func TestBadTable(t *testing.T) {
	db, err := sql.Open("pgx", dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := pgsession.New(t.Context(), db, pgsession.WithTable("x; DROP TABLE y")); err == nil {
		t.Fatal("a table name that is not an identifier was accepted")
	}
}

// BenchmarkSave measures one batched Save of n sessions, as an instance's
// saver makes every 100 ms, into a table already holding them (updates).
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			st, _, _ := newStore(b)
			ss := make([]hub.Session, n)
			for i := range ss {
				ss[i] = session(fmt.Sprint(i), "one", 0)
			}
			if err := st.Save(b.Context(), ss); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := st.Save(b.Context(), ss); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/session")
		})
	}
}

// BenchmarkClaim measures a re-attach's Claim on another instance.
func BenchmarkClaim(b *testing.B) {
	st, _, _ := newStore(b)
	s := session("tok", "one", 0)
	if err := st.Save(b.Context(), []hub.Session{s}); err != nil {
		b.Fatal(err)
	}
	owners := []string{"one", "two"}
	i := 0
	for b.Loop() {
		i++
		if _, err := st.Claim(b.Context(), s.TokenHash, "alice", owners[i%2], time.Now().Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}
