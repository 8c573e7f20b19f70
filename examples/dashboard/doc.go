// Package dashboard serves the lead dashboard: the React app in this
// directory (the seed's signalRService, useSignalR and LeadContext), built by
// Vite into dist/ and embedded into the binary that imports this package.
//
//	mux.Handle("/", dashboard.Handler())
//
// Build the app first with `make dashboard` (npm ci and npm run build here);
// until then Handler answers "/" with a page saying so. The build output is
// not committed: dist/ holds only a .gitkeep, so that go:embed always has a
// directory to embed.
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
