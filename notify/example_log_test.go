package notify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// positionsHub stands in for *hub.Server: it prints what the relay
// publishes and signals each publish.
type positionsHub struct {
	printingHub
	published chan struct{}
}

func (h positionsHub) Publish(e hub.Entry) {
	m := e.Args[0].(*notify.LeadUpdateMessage)
	fmt.Printf("position %d: %s of lead %d, sequence %d\n", e.Position, m.Type, m.LeadID, m.Sequence)
	h.published <- struct{}{}
}

// With a durable event log, lead events are appended to the log — here in
// their own transaction; under a ctx carrying an eventlog.Batch, in the
// caller's — and every instance's Notifier publishes them from the log, with
// the event's position as sequence. The hub's clients catch up from the
// same log through NewHubLog.
func ExampleWithLog() {
	dir, _ := os.MkdirTemp("", "notify-example")
	defer os.RemoveAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	ctx := context.Background()
	l, err := eventlog.Open(ctx, db)
	if err != nil {
		panic(err)
	}
	defer l.Close()

	h := positionsHub{published: make(chan struct{})}
	opts := []notify.Option{notify.WithLog(l)}
	_ = notify.NewHubLog(l, opts...) // for hub.New(hub.WithLog(...)) with a real hub
	n, err := notify.New(h, opts...)
	if err != nil {
		panic(err)
	}
	defer n.Close()
	for _, id := range []int64{7, 8} {
		if err := n.NotifyWorkflowStarted(ctx, id, "LeadProcessing"); err != nil {
			panic(err)
		}
		<-h.published
	}
	// Output:
	// position 1: WORKFLOW_STARTED of lead 7, sequence 1
	// position 2: WORKFLOW_STARTED of lead 8, sequence 2
}
