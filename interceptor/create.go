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
	add := func(v reflect.Value) {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return
			}
			v = v.Elem()
		}
		if v.Type() != p.modelType {
			return
		}
		fv, zero := c.id.ValueOf(db.Statement.Context, v)
		id, ok := toInt64(fv)
		if zero || !ok {
			return
		}
		cp := reflect.New(p.modelType)
		cp.Elem().Set(v)
		cs = append(cs, Change{Op: OpNewLead, Table: db.Statement.Table, LeadID: id, Lead: cp.Interface()})
	}
	rv := db.Statement.ReflectValue
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			add(rv.Index(i))
		}
	default:
		add(rv)
	}
	p.emit(db, cs)
}
