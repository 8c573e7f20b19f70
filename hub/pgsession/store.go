// Package pgsession is a [hub.SessionStore] over PostgreSQL: the table
// through which the instances of a hub hand stateful connections over to
// each other, so that a client re-attaching to another instance behind a
// load balancer resumes its connection there.
//
//	db, _ := sql.Open("pgx", dsn) // github.com/jackc/pgx/v5/stdlib
//	st, err := pgsession.New(ctx, db)
//	srv, err := hub.New(hub.WithSessionStore(st), hub.WithLog(log), ...)
//
// The table holds one row per stateful connection: the SHA-256 of its
// connection token (never the token), its id, user, protocol, groups and
// replay cursors, its owner and an expiry. Rows expire a stateful window
// after their last save; Save deletes expired rows, at most once a minute.
// A Store is safe for concurrent use and starts no goroutine.
package pgsession

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// Store is a hub.SessionStore in a PostgreSQL table.
type Store struct {
	db    *sql.DB
	table string
	q     queries

	mu     sync.Mutex
	pruned time.Time
}

var _ hub.SessionStore = (*Store)(nil)

// An Option configures a Store.
type Option func(*Store)

// WithTable sets the table's name, created if missing. Defaults to
// "hub_sessions".
func WithTable(name string) Option { return func(s *Store) { s.table = name } }

// pruneEvery is how often Save also deletes expired rows.
const pruneEvery = time.Minute

var identifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`)

// New returns a Store over db, creating its table if it is missing.
func New(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	s := &Store{db: db, table: "hub_sessions", pruned: time.Now()}
	for _, o := range opts {
		o(s)
	}
	if !identifier.MatchString(s.table) {
		return nil, fmt.Errorf("pgsession: table name %q is not a plain identifier", s.table)
	}
	s.q = newQueries(s.table)
	if _, err := db.ExecContext(ctx, s.q.create); err != nil {
		return nil, fmt.Errorf("pgsession: create table %s: %w", s.table, err)
	}
	return s, nil
}

type queries struct{ create, save, claim, delete, prune string }

func newQueries(t string) queries {
	const cols = `token_hash, connection_id, user_id, protocol, groups, acked, unacked, position, received, owner, epoch, expires_at`
	return queries{
		create: fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s (
	token_hash    bytea PRIMARY KEY,
	connection_id text NOT NULL,
	user_id       text NOT NULL,
	protocol      text NOT NULL,
	groups        text[] NOT NULL,
	acked         bigint NOT NULL,
	unacked       bigint NOT NULL,
	position      numeric(20) NOT NULL,
	received      bigint NOT NULL,
	owner         text NOT NULL,
	epoch         bigint NOT NULL,
	expires_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS %[1]s_expires_at ON %[1]s (expires_at)`, t),
		// One statement for the whole batch; a row another instance
		// claimed since (owner or epoch changed) is left alone.
		save: fmt.Sprintf(`INSERT INTO %[1]s AS t (%[2]s)
SELECT decode(r.h, 'hex'), r.c, r.u, r.p, r.g, r.a, r.n, r.pos, r.rc, r.o, r.e, r.x
FROM jsonb_to_recordset($1::jsonb) AS r(h text, c text, u text, p text, g text[], a bigint, n bigint, pos numeric, rc bigint, o text, e bigint, x timestamptz)
ON CONFLICT (token_hash) DO UPDATE SET
	connection_id = excluded.connection_id, user_id = excluded.user_id, protocol = excluded.protocol,
	groups = excluded.groups, acked = excluded.acked, unacked = excluded.unacked, position = excluded.position,
	received = excluded.received, expires_at = excluded.expires_at
WHERE t.owner = excluded.owner AND t.epoch = excluded.epoch`, t, cols),
		// The row locked, then updated only if the user matches: the
		// caller learns which of "none", "another user's" or "claimed".
		claim: fmt.Sprintf(`WITH cur AS (
	SELECT token_hash, user_id FROM %[1]s WHERE token_hash = $1 AND expires_at > now() FOR UPDATE
), upd AS (
	UPDATE %[1]s t SET
		epoch = CASE WHEN t.owner = $3 THEN t.epoch ELSE t.epoch + 1 END,
		owner = $3, expires_at = greatest(t.expires_at, $4)
	FROM cur WHERE t.token_hash = cur.token_hash AND cur.user_id = $2
	RETURNING t.connection_id, t.protocol, array_to_json(t.groups)::text, t.acked, t.unacked, t.position::text, t.received, t.owner, t.epoch, t.expires_at
)
SELECT cur.user_id, upd.* FROM cur LEFT JOIN upd ON true`, t),
		delete: fmt.Sprintf(`DELETE FROM %s WHERE token_hash = $1 AND owner = $2 AND epoch = $3`, t),
		prune:  fmt.Sprintf(`DELETE FROM %s WHERE expires_at < now()`, t),
	}
}

// row is a session as the save statement reads it.
type row struct {
	H   string    `json:"h"`
	C   string    `json:"c"`
	U   string    `json:"u"`
	P   string    `json:"p"`
	G   []string  `json:"g"`
	A   int64     `json:"a"`
	N   int64     `json:"n"`
	Pos uint64    `json:"pos"`
	RC  int64     `json:"rc"`
	O   string    `json:"o"`
	E   int64     `json:"e"`
	X   time.Time `json:"x"`
}

// Save upserts ss in one statement; see hub.SessionStore. Once a minute it
// also deletes expired rows.
func (s *Store) Save(ctx context.Context, ss []hub.Session) error {
	if len(ss) == 0 {
		return nil
	}
	rows := make([]row, len(ss))
	for i, x := range ss {
		g := x.Groups
		if g == nil {
			g = []string{}
		}
		rows[i] = row{H: hex.EncodeToString(x.TokenHash[:]), C: x.ConnectionID, U: x.UserID, P: x.Protocol, G: g,
			A: x.Acked, N: x.Unacked, Pos: x.Position, RC: x.Received, O: x.Owner, E: x.Epoch, X: x.Expires.UTC()}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("pgsession: encode sessions: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.save, b); err != nil {
		return fmt.Errorf("pgsession: save %d sessions: %w", len(ss), err)
	}
	s.mu.Lock()
	due := time.Since(s.pruned) >= pruneEvery
	if due {
		s.pruned = time.Now()
	}
	s.mu.Unlock()
	if due {
		if _, err := s.Prune(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Claim takes the session of tokenHash over for owner; see
// hub.SessionStore.
func (s *Store) Claim(ctx context.Context, tokenHash hub.TokenHash, userID, owner string, until time.Time) (hub.Session, error) {
	var (
		user                      string
		conn, proto, pos, own, gs sql.NullString
		acked, unacked, rc, epoch sql.NullInt64
		exp                       sql.NullTime
	)
	err := s.db.QueryRowContext(ctx, s.q.claim, tokenHash[:], userID, owner, until.UTC()).
		Scan(&user, &conn, &proto, &gs, &acked, &unacked, &pos, &rc, &own, &epoch, &exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return hub.Session{}, fmt.Errorf("pgsession: claim: %w", hub.ErrNoSession)
	case err != nil:
		return hub.Session{}, fmt.Errorf("pgsession: claim: %w", err)
	case !conn.Valid:
		return hub.Session{}, fmt.Errorf("pgsession: claim: %w", hub.ErrSessionUser)
	}
	p, err := strconv.ParseUint(pos.String, 10, 64)
	if err != nil {
		return hub.Session{}, fmt.Errorf("pgsession: claim: position %q: %w", pos.String, err)
	}
	var groups []string
	if err := json.Unmarshal([]byte(gs.String), &groups); err != nil {
		return hub.Session{}, fmt.Errorf("pgsession: claim: groups: %w", err)
	}
	return hub.Session{
		TokenHash: tokenHash, ConnectionID: conn.String, UserID: user, Protocol: proto.String, Groups: groups,
		Acked: acked.Int64, Unacked: unacked.Int64, Position: p, Received: rc.Int64,
		Owner: own.String, Epoch: epoch.Int64, Expires: exp.Time,
	}, nil
}

// Delete removes the session of tokenHash if owner holds it at epoch.
func (s *Store) Delete(ctx context.Context, tokenHash hub.TokenHash, owner string, epoch int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q.delete, tokenHash[:], owner, epoch)
	if err != nil {
		return false, fmt.Errorf("pgsession: delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("pgsession: delete: %w", err)
	}
	return n > 0, nil
}

// Prune deletes expired sessions and returns how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q.prune)
	if err != nil {
		return 0, fmt.Errorf("pgsession: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
