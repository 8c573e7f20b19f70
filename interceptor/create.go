package interceptor

import (
	"reflect"

	"gorm.io/gorm"
)

func (p *Plugin) afterCreate(db *gorm.DB) {
	if p.afterUpsert(db) {
		return
	}
	c, ok := p.watched(db)
	if !ok || db.RowsAffected == 0 {
		return
	}
	// Upserts that were not captured (SQLite, a caller's RETURNING) cannot
	// be told apart from inserts here: they are not reported.
	if _, upsert := db.Statement.Clauses["ON CONFLICT"]; upsert {
		return
	}
	var cs []Change
	p.eachRow(db.Statement, c, func(v reflect.Value, id int64) {
		cs = append(cs, Change{Op: OpNewLead, Table: db.Statement.Table, LeadID: id, Lead: p.copyRow(v)})
	})
	p.emit(db, cs)
}

// eachRow calls f with every row of the watched model that the statement
// wrote (its value, or each element of a slice or array of them) and the
// row's id; rows without an id are skipped.
func (p *Plugin) eachRow(stmt *gorm.Statement, c *columns, f func(v reflect.Value, id int64)) {
	one := func(v reflect.Value) {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return
			}
			v = v.Elem()
		}
		if v.Type() != p.modelType {
			return
		}
		fv, zero := c.id.ValueOf(stmt.Context, v)
		if id, ok := toInt64(fv); ok && !zero {
			f(v, id)
		}
	}
	rv := stmt.ReflectValue
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			one(rv.Index(i))
		}
	default:
		one(rv)
	}
}

// copyRow returns a pointer to a copy of the row, so that what the caller
// does with its model after the write never reaches the sink.
func (p *Plugin) copyRow(v reflect.Value) any {
	cp := reflect.New(p.modelType)
	cp.Elem().Set(v)
	return cp.Interface()
}
