package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestDSNParses(t *testing.T) {
	s := &Server{SocketDir: "/tmp/some dir+&x=y/sock", Port: 41234}
	cfg, err := pgx.ParseConfig(s.DSN("my db"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "/tmp/some dir+&x=y/sock" || cfg.Port != 41234 || cfg.Database != "my db" || cfg.User != "postgres" {
		t.Fatalf("DSN %s parsed as host=%q port=%d db=%q user=%q", s.DSN("my db"), cfg.Host, cfg.Port, cfg.Database, cfg.User)
	}
	cfg, err = pgx.ParseConfig(s.TCPDSN("db", "u", "p@ss:/w"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "127.0.0.1" || cfg.Port != 41234 || cfg.User != "u" || cfg.Password != "p@ss:/w" || cfg.TLSConfig != nil {
		t.Fatalf("TCPDSN parsed as host=%q port=%d user=%q password=%q tls=%v", cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.TLSConfig != nil)
	}
}

func TestSocket(t *testing.T) {
	s := Shared(t)
	conn := connect(t, s.DSN("postgres"))
	if v := queryString(t, conn, "SHOW server_version"); !strings.HasPrefix(v, "1") {
		t.Errorf("server_version = %q", v)
	}
	if v := queryString(t, conn, "SHOW fsync"); v != "off" {
		t.Errorf("fsync = %q, want off", v)
	}
	if v := queryString(t, conn, "SELECT current_user"); v != "postgres" {
		t.Errorf("current_user = %q", v)
	}
	t.Logf("server %s at %s, port %d", queryString(t, conn, "SHOW server_version"), s.SocketDir, s.Port)
}

func TestTCPPassword(t *testing.T) {
	s := Shared(t)
	conn := connect(t, s.TCPDSN("postgres", TestUser, TestPassword))
	if v := queryString(t, conn, "SELECT current_user"); v != TestUser {
		t.Errorf("current_user = %q, want %q", v, TestUser)
	}
	if v := queryString(t, conn, "SELECT inet_server_addr()::text"); !strings.HasPrefix(v, "127.0.0.1") {
		t.Errorf("inet_server_addr = %q, want a TCP connection", v)
	}
}

func TestTCPWrongPassword(t *testing.T) {
	s := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.TCPDSN("postgres", TestUser, "wrong-password"))
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connect with wrong password succeeded")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("want SQLSTATE 28P01 (invalid_password), got %v", err)
	}
}

func TestNewDBAndExec(t *testing.T) {
	dsn := NewDB(t)
	s := Shared(t)
	conn := connect(t, dsn)
	db := queryString(t, conn, "SELECT current_database()")
	if !strings.HasPrefix(db, "t_testnewdbandexec_") {
		t.Errorf("database name %q", db)
	}
	script := `
		CREATE TABLE t (id int PRIMARY KEY, s text);
		INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 10) g;
		DELETE FROM t WHERE id > 5;`
	if err := s.Exec(context.Background(), db, script); err != nil {
		t.Fatal(err)
	}
	if v := queryString(t, conn, "SELECT count(*)::text FROM t"); v != "5" {
		t.Errorf("count = %s, want 5", v)
	}
	err := s.Exec(context.Background(), db, "SELECT 1; SELECT nope")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42703" {
		t.Errorf("want wrapped 42703 error, got %v", err)
	}
}

// TestStartStopOpen starts a second, private cluster to check the state
// file round trip and that Stop is idempotent.
func TestStartStopOpen(t *testing.T) {
	Shared(t) // skip/fail consistently when PostgreSQL is unavailable
	dir, err := os.MkdirTemp("", "pgtest-own-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // let the postgres user in
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, filepath.Join(dir, "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if _, err := Start(ctx, s.Dir); err == nil {
		t.Fatal("second Start in the same dir succeeded")
	}
	o, err := Open(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if *o != *s {
		t.Fatalf("Open = %+v, want %+v", *o, *s)
	}
	if err := o.CreateDatabase(ctx, "exporter"); err != nil {
		t.Fatal(err)
	}
	connect(t, o.DSN("exporter")).Close(ctx)
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := o.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := pgx.Connect(ctx, o.DSN("exporter")); err == nil {
		t.Fatal("connect after Stop succeeded")
	}
}
