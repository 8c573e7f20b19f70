package interceptor

import (
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// mapLenKey keeps, for a create from *[]map[string]any, how many maps the
// slice held before the statement (GORM appends the RETURNING rows to it).
const mapLenKey = "interceptor:maplen"

func (p *Plugin) afterCreate(db *gorm.DB) {
	if p.afterUpsert(db) {
		return
	}
	n, hadLen := db.Statement.Settings.LoadAndDelete(mapLenKey)
	c, ok := p.watched(db)
	if !ok || db.RowsAffected == 0 {
		return
	}
	// Upserts that were not captured (SQLite, a caller's RETURNING) cannot
	// be told apart from inserts here: they are not reported.
	if _, upsert := db.Statement.Clauses["ON CONFLICT"]; upsert {
		return
	}
	if maps, isMap := createdMaps(db.Statement.Dest); isMap {
		before := len(maps)
		if hadLen {
			before = n.(int)
		}
		p.emit(db, p.mapRows(db.Statement, c, maps, before))
		return
	}
	stmt := db.Statement
	rv := stmt.ReflectValue
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		p.emit(db, p.createdRows(stmt.Table, c, rv))
	default:
		if rv.Type() != p.modelType {
			return
		}
		if id, ok := p.rowID(c, rv); ok {
			cp := reflect.New(p.modelType)
			cp.Elem().Set(rv)
			p.emit(db, []Change{{Op: OpNewLead, Table: stmt.Table, LeadID: id, Lead: cp.Interface()}})
		}
	}
}

// createdRows returns a NEW_LEAD per created row of a slice or array:
// every copy in one allocation, every Change in another.
func (p *Plugin) createdRows(table string, c *columns, rv reflect.Value) []Change {
	n := rv.Len()
	copies := reflect.MakeSlice(reflect.SliceOf(p.modelType), n, n)
	cs := make([]Change, 0, n)
	k := 0
	for i := 0; i < n; i++ {
		v := rv.Index(i)
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				break
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct || v.Type() != p.modelType {
			continue
		}
		id, ok := p.rowID(c, v)
		if !ok {
			continue
		}
		cp := copies.Index(k)
		k++
		cp.Set(v)
		cs = append(cs, Change{Op: OpNewLead, Table: table, LeadID: id, Lead: cp.Addr().Interface()})
	}
	return cs
}

// rowID reads the id of one row of the watched model (a struct value); a
// zero id is not an id.
func (p *Plugin) rowID(c *columns, v reflect.Value) (int64, bool) {
	fv := c.id.ReflectValueOf(nilCtx, v)
	for fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return 0, false
		}
		fv = fv.Elem()
	}
	switch fv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		id := fv.Int()
		return id, id != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := fv.Uint()
		return int64(u), u != 0 && u <= 1<<63-1
	}
	if !fv.IsValid() || fv.IsZero() {
		return 0, false
	}
	return toInt64(fv.Interface())
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
		if id, ok := p.rowID(c, v); ok {
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

// createdMaps returns the maps of a create from a map, *map, []map or
// *[]map (map[string]any), and whether the statement's Dest is one.
func createdMaps(dest any) ([]map[string]any, bool) {
	switch d := dest.(type) {
	case map[string]any:
		return []map[string]any{d}, true
	case *map[string]any:
		if d == nil {
			return nil, true
		}
		return []map[string]any{*d}, true
	case []map[string]any:
		return d, true
	case *[]map[string]any:
		if d == nil {
			return nil, true
		}
		return *d, true
	}
	return nil, false
}

// beforeCreateMaps records how many maps a *[]map create starts with: GORM
// appends the rows of its RETURNING to that slice as new maps.
func beforeCreateMaps(stmt *gorm.Statement) {
	if d, ok := stmt.Dest.(*[]map[string]any); ok && d != nil {
		stmt.Settings.Store(mapLenKey, len(*d))
	}
}

// mapRows turns the rows of a create from maps into NEW_LEAD changes. The
// first before maps are the caller's; the id of row i is in map i, or, when
// GORM appended the rows its RETURNING read (a *[]map create), in map
// before+i. Each Change.Lead is a new *Model filled from its map (see
// fromMap).
func (p *Plugin) mapRows(stmt *gorm.Statement, c *columns, maps []map[string]any, before int) []Change {
	if before > len(maps) {
		before = len(maps)
	}
	idSrc := maps[:before]
	if len(maps) >= 2*before && before > 0 {
		idSrc = maps[before : 2*before]
	}
	cs := make([]Change, 0, before)
	for i, m := range maps[:before] {
		if m == nil {
			continue
		}
		id, ok := mapID(idSrc[i], c)
		if !ok {
			if id, ok = mapID(m, c); !ok {
				continue
			}
		}
		cs = append(cs, Change{Op: OpNewLead, Table: stmt.Table, LeadID: id, Lead: p.fromMap(stmt, c, m, id)})
	}
	return cs
}

// mapID reads the id from a created map, by column or field name.
func mapID(m map[string]any, c *columns) (int64, bool) {
	v, ok := m[c.id.DBName]
	if !ok {
		v, ok = m[c.id.Name]
	}
	if !ok || v == nil {
		return 0, false
	}
	id, ok := toInt64(v)
	return id, ok && id != 0
}

// fromMap returns a new *Model with the fields the statement inserted from
// m (keys naming a field by column or Go name, honouring Select and Omit,
// values assignable to the field; SQL expressions are left out) and the id.
// Columns the database filled by its own defaults are zero.
func (p *Plugin) fromMap(stmt *gorm.Statement, c *columns, m map[string]any, id int64) any {
	cp := reflect.New(p.modelType)
	v := cp.Elem()
	selected, restricted := stmt.SelectAndOmitColumns(true, false)
	for k, val := range m {
		f := stmt.Schema.LookUpField(k)
		if f == nil || f.DBName == "" {
			continue
		}
		if s, ok := selected[f.DBName]; (ok && !s) || (!ok && restricted) {
			continue
		}
		switch val.(type) {
		case clause.Expr, clause.Expression, nil:
			continue
		}
		_ = f.Set(nilCtx, v, val) // a value GORM wrote as-is but cannot set is left zero
	}
	_ = c.id.Set(nilCtx, v, id)
	return cp.Interface()
}
