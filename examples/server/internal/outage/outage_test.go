package outage_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/examples/server/internal/outage"
)

func TestIs(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("syntax error"), false},
		{gorm.ErrRecordNotFound, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01"}), true},
		{&pgconn.PgError{Code: "08006"}, true},
		{fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{context.Canceled, false},
	} {
		if got := outage.Is(c.err); got != c.want {
			t.Errorf("Is(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestUnreachableIsOutage: what GORM returns for a PostgreSQL nobody
// listens at is an outage.
func TestUnreachableIsOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db, err := gorm.Open(postgres.Open("postgres://postgres@"+addr+"/test?connect_timeout=2"), &gorm.Config{Logger: logger.Discard, TranslateError: true})
	if err != nil {
		if !outage.Is(err) {
			t.Fatalf("open: %v is not an outage", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	err = db.WithContext(ctx).Raw("SELECT 1").Scan(&n).Error
	if err == nil || !outage.Is(err) {
		t.Fatalf("query on an unreachable database: %v, not an outage", err)
	}
	if s, _ := db.DB(); s != nil {
		s.Close()
	}
}
