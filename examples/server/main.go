// Command server is the example lead-processing server: scrapers, workflow,
// REST API, hub and dashboard in one process. Simulated scrapers find leads and start the
// LeadProcessing workflow; the REST API creates, changes and deletes them;
// every write goes through GORM with the interceptor plugged in, so that
// committed changes reach the LeadUpdatesHub's clients in order; the metrics
// publisher keeps the dashboard's figures current.
//
//	go run ./examples/server                                        # :8080, embedded SQLite
//	go run ./examples/server -db postgres://postgres@127.0.0.1/test # PostgreSQL
//	go run ./examples/server token -sub alice -role sales           # a token (needs LEADUPDATES_JWT_SECRET)
//
// See README.md for every flag, the endpoints and the roles.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run is main without the process: ready, when not nil, receives the
// listening address once the server serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	if len(args) > 0 && args[0] == "token" {
		return token(args[1:], stdout, stderr)
	}
	c, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	app, err := build(ctx, c, stderr)
	if err != nil {
		return err
	}
	return app.serve(ctx, stdout, ready)
}
