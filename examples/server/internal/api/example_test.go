package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/api"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
	"github.com/leadupdates/leadupdates/metrics"
)

// noWorkflow stands in for the workflow runner.
type noWorkflow struct{}

func (noWorkflow) Start(context.Context, int64) error { return nil }

// A salesperson creates a lead, which is theirs, and may not take another's.
func Example() {
	dir, err := os.MkdirTemp("", "api-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "leads.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	if err := db.AutoMigrate(&lead.Lead{}); err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	auth, _ := jwtauth.New(key)
	signer, _ := jwtauth.NewSigner(key)
	calc, err := metrics.New(db)
	if err != nil {
		log.Fatal(err)
	}

	a, err := api.New(api.Config{DB: db, Auth: auth, Workflow: noWorkflow{}, Metrics: calc})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Mount(mux)

	alice, _ := signer.Issue("alice", []string{access.RoleSales}, time.Hour)
	for _, body := range []string{`{"name": "Ada Lovelace", "source": "LinkedIn"}`, `{"name": "Bob's", "owner": "bob"}`} {
		req := httptest.NewRequest("POST", "/api/leads", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+alice)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var v struct{ Name, Status, Owner, Error, Field string }
		json.Unmarshal(rec.Body.Bytes(), &v)
		fmt.Printf("%d %+v %s\n", rec.Code, v, rec.Header().Get("Location"))
	}
	// Output:
	// 201 {Name:Ada Lovelace Status:New Owner:alice Error: Field:} /api/leads/1
	// 403 {Name: Status: Owner: Error:a salesperson creates leads for themselves only Field:owner}
}
