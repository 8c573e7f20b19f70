// Package api is the example server's REST API: the leads (list, create,
// import, read, update, delete, process, history) and the dashboard
// figures, as JSON over HTTP under /api/, the contract of
// examples/server/API.md.
//
//	a, err := api.New(api.Config{DB: db, Auth: auth, Workflow: runner, Metrics: calc, Logger: logger, Log: eventLog})
//	if err != nil { ... }
//	a.Mount(mux) // /api/leads, /api/leads/import, /api/leads/{id}, /api/leads/{id}/process, /api/leads/{id}/history, /api/metrics
//
// With an event log (Config.Log), the lead list says the log position it
// reflects, and a lead's history is read from the log.
//
// Every request needs a bearer token (Config.Auth's); admins see and
// change every lead, salespeople only their own (see package access).
//
// # Writes
//
// Every write goes through GORM on Config.DB, so that the interceptor plugged
// into that *gorm.DB reports it after commit; the API never notifies anyone
// itself. An import is validated as a whole and stored in one transaction:
// all rows or none. A PATCH updates only the columns it changes, and none
// when nothing changes, on the condition that the status it validated the
// transition against and the owner it checked access against are still the
// lead's (optimistic concurrency: otherwise 409, or 404 when the lead was
// deleted meanwhile). DELETE is GORM's soft delete, on the same owner
// condition.
//
// # Errors
//
// Every error is {"error": "...", "field": "..."}. Bad input is a 4xx,
// never a 500; a database failure is a 500 whose message says nothing
// internal, logged with the request's method and path.
//
// An API is safe for concurrent use.
package api
