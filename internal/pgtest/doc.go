// Package pgtest holds imago's PostgreSQL-backed integration test: a Temporal
// server (go.temporal.io/server, in process) on a real PostgreSQL, its schema
// made by the server's own schema tool from the embedded versioned migrations,
// exactly as temporal-sql-tool makes it for the docker-compose stack, and the
// real imago worker rolling a service out on it.
//
// The test needs a PostgreSQL it can create databases on: `make postgres`
// (scripts/postgres.sh) starts Debian's and creates the role imago/imago. It
// connects with IMAGO_TEST_POSTGRES, default
// postgres://imago:imago@127.0.0.1:5432/postgres?sslmode=disable, makes a fresh
// pair of databases per run and drops them afterwards.
package pgtest
