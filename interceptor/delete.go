package interceptor

import (
	"gorm.io/gorm"
)

func (p *Plugin) beforeDelete(db *gorm.DB) {
	c, ok := p.watched(db)
	stmt := db.Statement
	if !ok || stmt.SQL.Len() != 0 {
		return
	}
	if p.refuseOutsideTx(db) {
		return
	}
	if _, ok := stmt.Clauses["RETURNING"]; ok {
		return
	}
	st := &updateState{}
	st.cp.returning = " RETURNING " + stmt.Quote(stmt.Table) + "." + stmt.Quote(c.id.DBName)
	if c.audience != nil {
		st.cp.returning += ", " + stmt.Quote(stmt.Table) + "." + stmt.Quote(c.audience.DBName)
	}
	st.attach(stmt)
}

func (p *Plugin) afterDelete(db *gorm.DB) {
	stmt := db.Statement
	st := stateOf(stmt)
	if st == nil {
		return
	}
	st.restore(stmt)
	if db.Error != nil || !st.c.ran {
		return
	}
	_, soft := stmt.Clauses["soft_delete_enabled"]
	soft = soft && !stmt.Unscoped
	cs := make([]Change, 0, len(st.c.rows))
	for _, row := range st.c.rows {
		if id, ok := toInt64(row[0]); ok {
			ch := Change{Op: OpLeadDeleted, Table: stmt.Table, LeadID: id, Soft: soft}
			if len(row) > 1 {
				ch.Audience = toString(row[1])
			}
			cs = append(cs, ch)
		}
	}
	p.emit(db, cs)
}
