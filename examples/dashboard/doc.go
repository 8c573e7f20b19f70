// Package dashboard serves the lead dashboard: the React app in this
// directory (signalRService, useSignalR and LeadContext), built by Vite into
// dist/ and embedded into the binary that imports this package.
//
//	mux.Handle("/", dashboard.Handler())
//
// The build in dist/ is committed, so that `go run ./examples/server` (or
// `go run github.com/leadupdates/leadupdates/examples/server@latest`) serves
// the app with Go alone. After changing the app, rebuild it with
// `make dashboard` and commit dist/ with the sources: `make test` rebuilds
// the app elsewhere and fails when the committed build differs.
//
// Handler serves files from the build, falls back to index.html for any
// other path that does not look like a file (the app's routes), lets browsers
// keep the content-hashed files under /assets/ for a year, and asks them to
// revalidate everything else. It is safe for concurrent use.
//
// # Tests
//
// handler_test.go checks the handler over in-memory file systems;
// e2e_test.go drives the built app in headless Chromium against the real
// example server (see e2e/browser.mjs).
package dashboard
