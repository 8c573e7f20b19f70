package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/interceptor"
)

// The plugin wired to a printing sink: a create, a status update in a
// transaction and a rolled-back update. Only committed changes are printed.
func Example() {
	dir, err := os.MkdirTemp("", "interceptor-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "leads.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		fmt.Println(err)
		return
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if err := db.AutoMigrate(&Lead{}); err != nil {
		fmt.Println(err)
		return
	}

	sink := interceptor.SinkFunc(func(_ context.Context, cs []interceptor.Change) error {
		for _, c := range cs {
			switch c.Op {
			case interceptor.OpNewLead:
				fmt.Printf("%s #%d %s\n", c.Op, c.LeadID, c.Lead.(*Lead).Name)
			case interceptor.OpStatusUpdate:
				fmt.Printf("%s #%d %s -> %s\n", c.Op, c.LeadID, c.PreviousStatus, c.NewStatus)
			default:
				fmt.Printf("%s #%d\n", c.Op, c.LeadID)
			}
		}
		return nil
	})
	p, err := interceptor.New(&Lead{}, sink)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := db.Use(p); err != nil {
		fmt.Println(err)
		return
	}

	lead := Lead{Name: "Ada", Status: "new"}
	db.Create(&lead)
	db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&lead).Update("status", "contacted").Error
	})
	db.Transaction(func(tx *gorm.DB) error {
		tx.Model(&lead).Update("status", "lost")
		return errors.New("changed our mind") // rolled back: not printed
	})

	p.Close() // waits until the sink has seen every committed change
	// Output:
	// NEW_LEAD #1 Ada
	// STATUS_UPDATE #1 new -> contacted
}
