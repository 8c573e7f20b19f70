// Package testdb is where the module's tests find their databases: DSN,
// the PostgreSQL every package's tests use, and a private database on each
// engine the example server supports: a schema of its own on the real
// PostgreSQL, dropped at cleanup, and a fresh SQLite file. It is for tests
// only; nothing outside _test.go files imports it.
//
// PostgreSQL is at TEST_DATABASE_URL, by default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable
// (`make testenv` starts it). An unreachable server fails the
// test: it is never skipped.
//
// A database test runs as one subtest per engine:
//
//	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
//		db := testdb.Open(t, d.Open(t))
//		...
//	})
package testdb
