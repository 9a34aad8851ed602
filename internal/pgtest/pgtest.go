// Package pgtest starts throwaway PostgreSQL clusters from the system
// binaries for tests and local demos.
//
// A cluster lives entirely inside one directory:
//
//	DIR/data          the data directory (PGDATA)
//	DIR/sock          the unix-socket directory (unless the path is too long)
//	DIR/postgres.log  the server log
//	DIR/pgtest.json   state (port, socket dir, binaries) read back by Open
//
// The server is tuned for speed, not durability (fsync, synchronous_commit
// and full_page_writes are off), listens on a unix socket and on TCP
// 127.0.0.1:Port, trusts local socket connections and requires a
// scram-sha-256 password over TCP. A superuser login role TestUser with
// password TestPassword is created so tests can exercise password auth.
//
// When running as root the PostgreSQL programs are run as the "postgres"
// OS user via runuser(1), because initdb refuses to run as root.
//
// Test binaries use it like this:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDB(t) // fresh database, dropped at cleanup
//		...
//	}
package pgtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// TestUser is a superuser login role created in every cluster.
	TestUser = "exporter"
	// TestPassword is TestUser's password (scram-sha-256 over TCP).
	TestPassword = "exporter-secret-pw"

	// DisallowSkipEnv, when set to "1", turns "PostgreSQL is unavailable"
	// skips into test failures.
	DisallowSkipEnv = "EXPORTER_TEST_DISALLOW_SKIP"
	// BinEnv overrides the directory holding initdb, pg_ctl and postgres.
	BinEnv = "PG_BIN"

	stateFile = "pgtest.json"
	logFile   = "postgres.log"
	superUser = "postgres"
	osUser    = "postgres"
)

// ErrUnavailable is returned (wrapped) when PostgreSQL cannot be run on this
// machine at all: binaries missing, or running as root without a postgres
// OS user or runuser. Test helpers skip on it.
var ErrUnavailable = errors.New("postgresql unavailable")

// Server is a running (or stopped) throwaway cluster.
type Server struct {
	Dir       string `json:"dir"`        // cluster directory (owned by the caller)
	SocketDir string `json:"socket_dir"` // unix-socket directory
	Port      int    `json:"port"`       // TCP port on 127.0.0.1 (also names the socket)
	DataDir   string `json:"data_dir"`   // PGDATA
	LogFile   string `json:"log_file"`   // server log
	BinDir    string `json:"bin_dir"`    // directory with pg_ctl & co.

	// OwnSocketDir is set when SocketDir lies outside Dir (Dir's path is
	// too long for a unix socket) and Stop removes it.
	OwnSocketDir bool `json:"own_socket_dir,omitempty"`
}

// FindBin returns the directory holding the PostgreSQL server binaries:
// $PG_BIN if set, else /usr/lib/postgresql/15/bin, else the newest
// /usr/lib/postgresql/*/bin with an initdb.
func FindBin() (string, error) {
	if dir := os.Getenv(BinEnv); dir != "" {
		if !isExecutable(filepath.Join(dir, "initdb")) {
			return "", fmt.Errorf("pgtest: %s=%s has no executable initdb: %w", BinEnv, dir, ErrUnavailable)
		}
		return dir, nil
	}
	if dir := "/usr/lib/postgresql/15/bin"; isExecutable(filepath.Join(dir, "initdb")) {
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	type cand struct {
		ver int
		dir string
	}
	var cands []cand
	for _, m := range matches {
		if !isExecutable(m) {
			continue
		}
		dir := filepath.Dir(m)
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		cands = append(cands, cand{v, dir})
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("pgtest: no postgresql server binaries in /usr/lib/postgresql/*/bin (install postgresql-15 or set %s): %w", BinEnv, ErrUnavailable)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ver > cands[j].ver })
	return cands[0].dir, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// runner knows how to run PostgreSQL programs as the right OS user.
type runner struct {
	binDir   string
	asRoot   bool
	runuser  string
	uid, gid int
}

func newRunner(binDir string) (*runner, error) {
	r := &runner{binDir: binDir, uid: -1, gid: -1}
	if os.Geteuid() != 0 {
		return r, nil
	}
	r.asRoot = true
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root but no %q os user to run postgresql as: %v: %w", osUser, err, ErrUnavailable)
	}
	if r.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("pgtest: uid of %q: %w", osUser, err)
	}
	if r.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("pgtest: gid of %q: %w", osUser, err)
	}
	if r.runuser, err = exec.LookPath("runuser"); err != nil {
		for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"} {
			if isExecutable(p) {
				r.runuser, err = p, nil
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root but runuser not found (install util-linux): %w", ErrUnavailable)
		}
	}
	return r, nil
}

// command builds an exec.Cmd for a PostgreSQL program (or, with a "/" in
// prog, an absolute path) run as the postgres user when we are root.
func (r *runner) command(ctx context.Context, workDir, prog string, args ...string) *exec.Cmd {
	path := prog
	if !strings.Contains(prog, "/") {
		path = filepath.Join(r.binDir, prog)
	}
	var cmd *exec.Cmd
	if r.asRoot {
		cmd = exec.CommandContext(ctx, r.runuser, append([]string{"-u", osUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = workDir
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (r *runner) run(ctx context.Context, workDir, prog string, args ...string) ([]byte, error) {
	out, err := r.command(ctx, workDir, prog, args...).CombinedOutput()
	return out, err
}

// chown gives path to the postgres user when running as root.
func (r *runner) chown(path string) error {
	if !r.asRoot {
		return nil
	}
	if err := os.Chown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("pgtest: chown %s to %s: %w", path, osUser, err)
	}
	return nil
}

// cleanEnv drops PG* variables (they would redirect the tools) and forces
// the C locale so messages are predictable.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LANG=C", "LC_ALL=C")
}

// maxSocketPath is the usable length of sun_path on Linux (108 incl. NUL).
const maxSocketPath = 107

// Start creates a new cluster in dir (created if missing; dir/data must not
// exist yet), starts it and creates the TestUser role. Call Stop when done;
// dir is left in place.
func Start(ctx context.Context, dir string) (*Server, error) {
	binDir, err := FindBin()
	if err != nil {
		return nil, err
	}
	r, err := newRunner(binDir)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{
		Dir:     dir,
		DataDir: filepath.Join(dir, "data"),
		LogFile: filepath.Join(dir, logFile),
		BinDir:  binDir,
	}
	if _, err := os.Stat(s.DataDir); err == nil {
		return nil, fmt.Errorf("pgtest: data directory %s already exists (stop the old cluster and remove %s first)", s.DataDir, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pgtest: create cluster dir: %w", err)
	}
	if err := r.chown(dir); err != nil {
		return nil, err
	}
	if r.asRoot {
		// Parent directories (e.g. a 0700 t.TempDir() root) may keep the
		// postgres user out; say so clearly instead of a confusing initdb error.
		if out, err := r.run(ctx, "/", "/usr/bin/test", "-w", dir, "-a", "-x", dir); err != nil {
			return nil, fmt.Errorf("pgtest: cluster dir %s is not accessible to the %s os user (are all parent directories searchable?): %w: %s", dir, osUser, err, out)
		}
	}

	// Socket directory: inside dir unless the socket path would be too long.
	s.SocketDir = filepath.Join(dir, "sock")
	if len(s.SocketDir)+len("/.s.PGSQL.65535.lock") > maxSocketPath {
		if s.SocketDir, err = os.MkdirTemp("", "pgsock-"); err != nil {
			return nil, fmt.Errorf("pgtest: create socket dir: %w", err)
		}
		s.OwnSocketDir = true
	} else if err := os.Mkdir(s.SocketDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("pgtest: create socket dir: %w", err)
	}
	if err := r.chown(s.SocketDir); err != nil {
		return nil, err
	}

	if out, err := r.run(ctx, dir, "initdb",
		"-D", s.DataDir,
		"-U", superUser,
		"-E", "UTF8",
		"--no-locale",
		"--no-sync",
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
	); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w: %s", err, bytesTrim(out))
	}
	hba := "# pgtest\nlocal all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(s.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, fmt.Errorf("pgtest: write pg_hba.conf: %w", err)
	}
	if err := appendFile(filepath.Join(s.DataDir, "postgresql.conf"), "\ninclude 'pgtest.conf'\n"); err != nil {
		return nil, fmt.Errorf("pgtest: edit postgresql.conf: %w", err)
	}

	// Pick a free port; retry if someone grabbed it between probe and bind.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		if err := s.writeConf(r); err != nil {
			return nil, err
		}
		err = s.pgctlStart(ctx, r)
		if err == nil {
			break
		}
		if attempt < attempts && ctx.Err() == nil && strings.Contains(s.logTail(8<<10), "could not bind") {
			continue
		}
		return nil, err
	}
	if err := s.writeState(); err != nil {
		_ = s.Stop()
		return nil, err
	}
	role := fmt.Sprintf("CREATE ROLE %s LOGIN SUPERUSER PASSWORD %s",
		pgx.Identifier{TestUser}.Sanitize(), quoteLiteral(TestPassword))
	if err := s.Exec(ctx, "postgres", role); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("pgtest: create role %s: %w", TestUser, err)
	}
	return s, nil
}

func (s *Server) writeConf(r *runner) error {
	conf := strings.Join([]string{
		"# written by pgtest: throwaway test cluster, not durable",
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(s.Port),
		"unix_socket_directories = " + quoteLiteral(s.SocketDir),
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"max_connections = 100",
		"max_wal_size = '1GB'",
		"checkpoint_timeout = '30min'",
		"lc_messages = 'C'",
		"logging_collector = off",
		"log_min_messages = warning",
		"",
	}, "\n")
	path := filepath.Join(s.DataDir, "pgtest.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("pgtest: write pgtest.conf: %w", err)
	}
	return r.chown(path)
}

func (s *Server) pgctlStart(ctx context.Context, r *runner) error {
	out, err := r.run(ctx, s.Dir, "pg_ctl", "start",
		"-D", s.DataDir,
		"-l", s.LogFile,
		"-w", "-t", "120",
	)
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl start: %w: %s\n--- tail of %s ---\n%s",
			err, bytesTrim(out), s.LogFile, s.logTail(4<<10))
	}
	return nil
}

// Open returns the Server described by the state file Start wrote in dir.
func Open(dir string) (*Server, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("pgtest: read cluster state: %w", err)
	}
	var s Server
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("pgtest: parse cluster state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

func (s *Server) writeState() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("pgtest: encode cluster state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, stateFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("pgtest: write cluster state: %w", err)
	}
	return nil
}

// Stop stops the server with "pg_ctl stop -m immediate". It is a no-op if
// the server is not running. Nothing in Dir is removed.
func (s *Server) Stop() error {
	if s.OwnSocketDir {
		defer os.RemoveAll(s.SocketDir)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	r, err := newRunner(s.BinDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := r.run(ctx, s.Dir, "pg_ctl", "stop", "-D", s.DataDir, "-m", "immediate", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w: %s", err, bytesTrim(out))
	}
	return nil
}

// DSN returns a unix-socket connection URL for database db as the
// postgres superuser (trust auth), e.g.
// postgres://postgres@/db?host=%2Ftmp%2Fx%2Fsock&port=41234.
func (s *Server) DSN(db string) string {
	// pgx does not decode "+" as a space in query values, so use %20.
	host := strings.ReplaceAll(url.QueryEscape(s.SocketDir), "+", "%20")
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.User(superUser),
		Path:     "/" + db,
		RawQuery: "host=" + host + "&port=" + strconv.Itoa(s.Port),
	}).String()
}

// TCPDSN returns a TCP connection URL for 127.0.0.1:Port (password auth).
func (s *Server) TCPDSN(db, user, password string) string {
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}).String()
}

// CreateDatabase creates database name (owned by the postgres superuser).
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if err := s.Exec(ctx, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name if it exists, terminating connections.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// Exec runs a (possibly multi-statement) SQL script in database db over the
// unix socket using the simple query protocol.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		return fmt.Errorf("pgtest: connect to %s: %w", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("pgtest: exec in %s: %w", db, err)
	}
	return nil
}

// logTail returns up to n bytes from the end of the server log.
func (s *Server) logTail(n int64) string {
	f, err := os.Open(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }

// ---- test helpers ----

var shared struct {
	once sync.Once
	mu   sync.Mutex
	srv  *Server
	dir  string
	err  error
}

// Shared returns the test binary's shared server, starting it on first use.
// It skips the test when PostgreSQL is unavailable (fails instead when
// EXPORTER_TEST_DISALLOW_SKIP=1). Use RunMain in TestMain to stop it.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "pgtest-")
		if err != nil {
			shared.err = fmt.Errorf("pgtest: create temp dir: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		srv, err := Start(ctx, dir)
		shared.mu.Lock()
		defer shared.mu.Unlock()
		shared.dir = dir
		if err != nil {
			shared.err = err
			return
		}
		shared.srv = srv
	})
	if shared.err != nil {
		if errors.Is(shared.err, ErrUnavailable) {
			if os.Getenv(DisallowSkipEnv) == "1" {
				t.Fatalf("%v (skipping disallowed by %s=1)", shared.err, DisallowSkipEnv)
			}
			t.Skipf("skipping: %v", shared.err)
		}
		t.Fatal(shared.err)
	}
	return shared.srv
}

// RunMain runs the tests, then stops the shared server (if one was started)
// and removes its directory. Use as: os.Exit(pgtest.RunMain(m)).
func RunMain(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	if shared.dir != "" {
		if shared.err != nil && !errors.Is(shared.err, ErrUnavailable) {
			// Keep the log of a failed start around for inspection.
			fmt.Fprintf(os.Stderr, "pgtest: keeping %s after failed start\n", shared.dir)
		} else {
			_ = os.RemoveAll(shared.dir)
		}
		shared.dir = ""
	}
	return code
}

var dbSeq atomic.Int64

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// NewDB creates a fresh, uniquely named database on the shared server for
// one test, drops it (WITH FORCE) when the test finishes, and returns its
// unix-socket DSN.
func NewDB(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	base := strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), dbSeq.Add(1))
	if max := 63 - len("t_") - len(suffix); len(base) > max {
		base = base[:max]
	}
	name := "t_" + base + suffix
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return s.DSN(name)
}
