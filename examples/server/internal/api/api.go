package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/go-kit/log"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/metrics"
)

// Processor starts the LeadProcessing workflow of a lead in the background.
// Start must return once the workflow has started (or was refused): ctx is
// the request's and ends with it. An error implementing
// interface{ HTTPStatus() int } (404 no such lead, 409 already running or
// not processable, 503 busy) answers with that status and the error's
// message, which must therefore say nothing internal; any other error, or
// the status 500, is a logged 500 with a generic message.
type Processor interface {
	Start(ctx context.Context, leadID int64) error
}

// Config holds the API's collaborators. DB, Auth, Workflow and Metrics are
// required; Logger defaults to a nop logger; Log is optional: without it a
// lead's history answers 503 and the lead list carries no position.
type Config struct {
	DB       *gorm.DB          // with the interceptor plugged in, so writes are reported
	Auth     hub.Authenticator // e.g. *jwtauth.Authenticator; an error answers 401
	Workflow Processor
	Metrics  metrics.Source // e.g. *metrics.Calculator
	Logger   log.Logger
	Log      EventLog // e.g. *eventlog.Log on DB
}

// API serves the REST API. It is safe for concurrent use.
type API struct {
	db       *gorm.DB
	auth     hub.Authenticator
	workflow Processor
	metrics  metrics.Source
	logger   log.Logger
	log      EventLog
}

// New returns an API with cfg's collaborators.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("api: nil DB")
	case cfg.Auth == nil:
		return nil, errors.New("api: nil Auth")
	case cfg.Workflow == nil:
		return nil, errors.New("api: nil Workflow")
	case cfg.Metrics == nil:
		return nil, errors.New("api: nil Metrics")
	}
	a := &API{db: cfg.DB, auth: cfg.Auth, workflow: cfg.Workflow, metrics: cfg.Metrics,
		logger: cfg.Logger, log: cfg.Log}
	if a.logger == nil {
		a.logger = log.NewNopLogger()
	}
	return a, nil
}

// Mount registers the API's routes on mux, everything under /api/: unknown
// paths answer a JSON 404, known paths with another method a JSON 405.
// Every route authenticates first.
func (a *API) Mount(mux *http.ServeMux) {
	mux.Handle("/api/leads", a.route(methods{http.MethodGet: a.list, http.MethodPost: a.create}))
	mux.Handle("/api/leads/import", a.route(methods{http.MethodPost: a.importLeads}))
	mux.Handle("/api/leads/{id}", a.route(methods{http.MethodGet: a.get, http.MethodPatch: a.patch, http.MethodDelete: a.delete}))
	mux.Handle("/api/leads/{id}/process", a.route(methods{http.MethodPost: a.process}))
	mux.Handle("/api/leads/{id}/history", a.route(methods{http.MethodGet: a.history}))
	mux.Handle("/api/metrics", a.route(methods{http.MethodGet: a.getMetrics}))
	mux.Handle("/api/", a.route(nil))
}

// A handler serves one method of one route for an authenticated user.
type handler func(w http.ResponseWriter, r *http.Request, u user) error

// methods maps the methods of one path to their handlers. The patterns are
// method-less and the method is chosen here, so that the 405 is JSON and
// /api/leads/import does not conflict with GET /api/leads/{id}.
type methods map[string]handler

// route authenticates, checks the role and the method, and runs the
// handler; ms nil is the catch-all 404.
func (a *API) route(ms methods) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the Authorization header: a token in the URL
		// (?access_token=, which the hub accepts because browsers cannot set
		// headers on WebSockets and EventSource) ends up in proxy and access
		// logs, and the REST API has no need for it.
		var p *hub.Principal
		var err error
		if hasBearer(r) {
			p, err = a.auth.Authenticate(r)
		}
		if err != nil || p == nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or invalid token"})
			return
		}
		if ms == nil {
			a.fail(w, r, &apiError{status: http.StatusNotFound, msg: "no such endpoint"})
			return
		}
		h, ok := ms[r.Method]
		if !ok {
			allow := make([]string, 0, len(ms))
			for m := range ms {
				allow = append(allow, m)
			}
			slices.Sort(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			a.fail(w, r, &apiError{status: http.StatusMethodNotAllowed, msg: "method " + r.Method + " not allowed"})
			return
		}
		u := user{id: p.ID, roles: p.Roles}
		if !u.admin() && !u.sales() {
			a.fail(w, r, forbidden("the token has neither the admin nor the sales role"))
			return
		}
		if err := h(w, r, u); err != nil {
			a.fail(w, r, err)
		}
	})
}

// hasBearer reports whether r has an Authorization: Bearer header.
func hasBearer(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	return len(h) > 7 && strings.EqualFold(h[:7], "Bearer ")
}

// user is the authenticated caller.
type user struct {
	id    string
	roles []string
}

func (u user) admin() bool { return slices.Contains(u.roles, access.RoleAdmin) }
func (u user) sales() bool { return slices.Contains(u.roles, access.RoleSales) }

// canSee reports whether u may see and change a lead owned by owner.
func (u user) canSee(owner string) bool { return access.CanSee(u.id, u.roles, owner) }
