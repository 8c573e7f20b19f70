package workflow_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/workflow"
)

// printer is a Notifier that prints the workflow's events.
type printer struct{}

func (printer) NotifyWorkflowStarted(_ context.Context, id int64, wf string) error {
	fmt.Println("started", wf, id)
	return nil
}

func (printer) NotifyWorkflowCompleted(_ context.Context, id int64, wf string) error {
	fmt.Println("completed", wf, id)
	return nil
}

func (printer) NotifyWorkflowFailed(_ context.Context, id int64, wf, reason string) error {
	fmt.Println("failed", wf, id, reason)
	return nil
}

func ExampleRunner_Process() {
	dir, _ := os.MkdirTemp("", "workflow")
	defer os.RemoveAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "leads.db")), &gorm.Config{Logger: logger.Discard})
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	_ = db.AutoMigrate(&lead.Lead{})

	r, err := workflow.New(db, printer{}, workflow.WithStepDelay(0), workflow.WithFailureRate(0), workflow.WithThreshold(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close(context.Background())

	l := lead.Lead{Name: "Ada Lovelace", Company: "Analytical Engines", Source: lead.SourceManual, Status: lead.StatusNew}
	db.Create(&l)
	if err := r.Process(context.Background(), l.ID); err != nil {
		fmt.Println(err)
	}
	db.Take(&l, l.ID)
	fmt.Println(l.Status, l.ProcessedAt != nil)

	err = r.Process(context.Background(), l.ID)
	fmt.Println(err, err.(interface{ HTTPStatus() int }).HTTPStatus())
	// Output:
	// started LeadProcessing 1
	// completed LeadProcessing 1
	// SyncedToCrm true
	// lead 1 is SyncedToCrm: only New, Failed or Disqualified leads can be processed 409
}
