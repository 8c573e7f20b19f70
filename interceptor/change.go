package interceptor

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Op says what happened to a lead. A Sink maps each to what announces it,
// for example OpStatusUpdate to notify's NotifyLeadStatusUpdate.
type Op string

const (
	OpNewLead          Op = "NEW_LEAD"
	OpStatusUpdate     Op = "STATUS_UPDATE"
	OpScoreUpdate      Op = "SCORE_UPDATE"
	OpEnrichmentUpdate Op = "ENRICHMENT_UPDATE"
	OpLeadDeleted      Op = "LEAD_DELETED"
)

// A Change is one committed change of one lead row. Fields that do not apply
// to Op are zero; new fields may be added.
type Change struct {
	Op     Op
	Table  string // the table written, e.g. "leads"
	LeadID int64

	// Lead is, for OpNewLead, a pointer to a copy of the created row (the
	// caller's model type), taken after GORM filled in the generated id.
	// For a create from a map it is a new *Model holding the map's values
	// for the fields the statement wrote and the id; SQL expressions and
	// database defaults are zero in it (see Creates in the package doc).
	// For a PostgreSQL upsert from several maps it is nil.
	Lead any

	PreviousStatus, NewStatus string  // OpStatusUpdate
	PreviousScore, NewScore   float64 // OpScoreUpdate

	// Enrichment holds, for OpEnrichmentUpdate, the new values of the
	// enrichment columns by column name, as the driver returned them.
	Enrichment map[string]any

	// Soft is true for an OpLeadDeleted that set gorm.DeletedAt.
	Soft bool

	// Audience is, with Fields.Audience set, that column's value in the row
	// as the change left it (for OpLeadDeleted: the deleted row's), as a
	// string; "" otherwise.
	Audience string
}

// A Sink receives the changes of one committed transaction (or of one
// autocommitted statement), in statement order. Batches arrive in commit
// order, one at a time; ctx ends 5 s after the call starts. With
// WithEventLog it is called instead just before COMMIT, with the
// transaction's ctx, and its error fails the write (see WithEventLog).
type Sink interface {
	Publish(ctx context.Context, changes []Change) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, changes []Change) error

// Publish calls f.
func (f SinkFunc) Publish(ctx context.Context, changes []Change) error { return f(ctx, changes) }

// Skip, added with db.Clauses(interceptor.Skip), makes the plugin ignore one
// statement: it is neither captured nor emitted.
var Skip clause.Expression = skip{}

const skipKey = "interceptor:skip"

type skip struct{}

func (skip) Build(clause.Builder) {}

// ModifyStatement marks the statement instead of adding a clause, so the SQL
// is unchanged.
func (skip) ModifyStatement(stmt *gorm.Statement) { stmt.Settings.Store(skipKey, true) }

var _ gorm.StatementModifier = skip{}
