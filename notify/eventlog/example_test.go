package eventlog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// Events appended in a transaction that commits are read back in order;
// those of one that rolls back never exist.
func Example() {
	dir, _ := os.MkdirTemp("", "eventlog")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	ctx := context.Background()

	l, err := eventlog.Open(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	for _, commit := range []bool{true, false, true} {
		_ = db.Transaction(func(tx *gorm.DB) error {
			if err := l.Append(ctx, tx.Statement.ConnPool,
				eventlog.Event{LeadID: 42, Type: "STATUS_UPDATE", Payload: []byte(fmt.Sprintf(`{"committed":%t}`, commit))},
			); err != nil {
				return err
			}
			if !commit {
				return fmt.Errorf("rolled back")
			}
			return nil
		})
	}
	l.Committed()

	evs, err := l.History(ctx, 42, 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range evs {
		fmt.Println(e.Position, e.Type, string(e.Payload))
	}
	// Output:
	// 1 STATUS_UPDATE {"committed":true}
	// 2 STATUS_UPDATE {"committed":true}
}
