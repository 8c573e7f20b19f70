// Command server is the example lead-updates server: the LeadUpdatesHub
// behind JWT authentication, with graceful shutdown. It grows into the whole
// lead-processing system (REST API, scrapers, workflow, interceptor, metrics)
// as those packages land; today it serves the hub and a demo feed of lead
// updates so that any @microsoft/signalr client sees live data.
//
//	go run ./examples/server                    # listen on :8080
//	go run ./examples/server token -sub alice   # print a token for alice
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	kitlog "github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run is main without the process: ready, when not nil, receives the address
// once the server listens.
func run(ctx context.Context, args []string, stdout io.Writer, ready chan<- string) error {
	if len(args) > 0 && args[0] == "token" {
		return token(args[1:], stdout)
	}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("addr", envOr("LEADUPDATES_ADDR", ":8080"), "listen address (env LEADUPDATES_ADDR)")
	secret := fs.String("jwt-secret", os.Getenv("LEADUPDATES_JWT_SECRET"), "HMAC secret for tokens, at least 32 bytes (env LEADUPDATES_JWT_SECRET); random when empty")
	origins := fs.String("origins", os.Getenv("LEADUPDATES_ORIGINS"), "comma-separated browser origins allowed cross-origin (env LEADUPDATES_ORIGINS)")
	demo := fs.Duration("demo", 2*time.Second, "interval of the demo lead updates; 0 turns them off")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, generated, err := jwtKey(*secret)
	if err != nil {
		return err
	}
	auth, err := jwtauth.New(key)
	if err != nil {
		return err
	}
	signer, err := jwtauth.NewSigner(key)
	if err != nil {
		return err
	}

	logger := level.NewFilter(kitlog.NewLogfmtLogger(kitlog.NewSyncWriter(os.Stderr)), level.AllowInfo())
	reg := prometheus.NewRegistry()
	opts := []hub.Option{
		hub.WithAuthenticator(auth),
		hub.WithLogger(logger),
		hub.WithRegisterer(reg),
	}
	if *origins != "" {
		opts = append(opts, hub.WithAllowedOrigins(splitComma(*origins)...))
	}
	srv, err := hub.New(opts...)
	if err != nil {
		return err
	}
	defer srv.Close()

	mux := http.NewServeMux()
	srv.Mount(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()

	demoToken, err := signer.Issue("demo", []string{"admin"}, 24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "leadupdates hub on http://%s%s\n", ln.Addr(), srv.Path())
	if generated {
		fmt.Fprintln(stdout, "JWT secret: random for this run (set LEADUPDATES_JWT_SECRET to keep tokens across restarts)")
	}
	fmt.Fprintf(stdout, "demo token (admin, 24h): %s\n", demoToken)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	notifier, err := notify.New(srv, notify.WithLogger(logger), notify.WithRegisterer(reg))
	if err != nil {
		return err
	}
	defer notifier.Close()
	if *demo > 0 {
		go feed(ctx, notifier, *demo)
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Tell clients to reconnect (to another instance, or to this one when it
	// is back), then stop serving.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := httpSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// feed announces a made-up status change every interval, until ctx is done.
func feed(ctx context.Context, n *notify.Notifier, every time.Duration) {
	statuses := []string{"New", "Enriching", "Enriched", "Scored", "Vetted", "Qualified", "SyncedToCrm"}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			id := int64(i%5 + 1)
			_ = n.NotifyLeadStatusUpdate(ctx, id, statuses[i%len(statuses)], statuses[(i+1)%len(statuses)])
		}
	}
}

// token prints a token signed with the server's configuration.
func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "demo", "subject (user id)")
	role := fs.String("role", "admin", "role: admin or sales")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	secret := fs.String("jwt-secret", os.Getenv("LEADUPDATES_JWT_SECRET"), "HMAC secret (env LEADUPDATES_JWT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role != "admin" && *role != "sales" {
		return fmt.Errorf("role %q: want admin or sales", *role)
	}
	if *secret == "" {
		return errors.New("no secret: set LEADUPDATES_JWT_SECRET (or -jwt-secret) to the server's")
	}
	key, _, err := jwtKey(*secret)
	if err != nil {
		return err
	}
	signer, err := jwtauth.NewSigner(key)
	if err != nil {
		return err
	}
	tok, err := signer.Issue(*sub, []string{*role}, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func jwtKey(secret string) (key []byte, generated bool, err error) {
	if secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return []byte(hex.EncodeToString(b)), true, nil
	}
	if len(secret) < 32 {
		return nil, false, fmt.Errorf("the JWT secret has %d bytes; it needs at least 32", len(secret))
	}
	return []byte(secret), false, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
