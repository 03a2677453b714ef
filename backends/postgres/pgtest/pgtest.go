// Package pgtest runs the tests of cqrsgen's PostgreSQL store against a
// real server, the way net/http/httptest runs HTTP tests against a real
// listener.
//
// A test package calls [Main] from its TestMain. When the environment
// variable CQRSGEN_POSTGRES_DSN is set, the tests use that server. Otherwise
// Main starts a throwaway server: it runs initdb into a fresh temporary
// directory (as the "postgres" OS user when the tests run as root, because
// initdb refuses root), starts postgres listening only on a unix socket in
// that directory, runs the tests, stops the server and removes the
// directory. When no server binaries can be found, the tests that need a
// server fail in CI (the CI environment variable is set) with a message
// saying what to install; elsewhere they skip with that message, so that
// `go test ./...` works on a machine without PostgreSQL.
//
// Each test then calls [Schema] (or [Database]) to get a fresh, private
// namespace, so tests are isolated from each other and may run in parallel.
//
// Environment:
//
//   - CQRSGEN_POSTGRES_DSN: use this server instead of starting one.
//   - CQRSGEN_PG_BIN: directory holding initdb and postgres (default: $PATH,
//     then the newest /usr/lib/postgresql/*/bin).
//   - CQRSGEN_PG_FSYNC=off: start the throwaway server with fsync=off
//     (default on, so figures measured against it include real syncs).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvDSN names the variable holding the DSN of an existing server.
	EnvDSN = "CQRSGEN_POSTGRES_DSN"
	// EnvBin names the variable holding the directory of the server binaries.
	EnvBin = "CQRSGEN_PG_BIN"
	// EnvFsync names the variable that, set to "off", disables fsync on the
	// throwaway server.
	EnvFsync = "CQRSGEN_PG_FSYNC"
)

var (
	dsnMu sync.RWMutex
	dsn   string
	// skipReason, when set, makes Schema and Database skip their test:
	// no server outside CI.
	skipReason string
)

// Main runs the package's tests against a PostgreSQL server and exits with
// their status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// If the server cannot be started, Main prints why and what to install and
// exits with status 1 without running any test.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if d := os.Getenv(EnvDSN); d != "" {
		setDSN(d)
		return m.Run()
	}
	if _, err := Binaries(); err != nil && os.Getenv("CI") == "" {
		skipReason = fmt.Sprintf("pgtest: no PostgreSQL server for these tests (set %s, or %v)", EnvDSN, err)
		fmt.Fprintln(os.Stderr, skipReason+": tests that need a server skip; in CI they fail")
		return m.Run()
	}
	srv, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: pgtest: %v\n", err)
		return 1
	}
	setDSN(srv.DSN())
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stopping the test server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Require skips t when there is no server to test against and the tests
// do not run in CI (see the package doc); in CI, or with a server, it
// returns. Tests that reach the server through DSN or Start rather than
// Schema or Database call it first.
func Require(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if DSN() != "" || os.Getenv(EnvDSN) != "" {
		return
	}
	if _, err := Binaries(); err != nil && os.Getenv("CI") == "" {
		t.Skipf("pgtest: no PostgreSQL server for this test (set %s, or %v)", EnvDSN, err)
	}
}

func setDSN(d string) {
	dsnMu.Lock()
	dsn = d
	dsnMu.Unlock()
}

// DSN returns the DSN of the server the tests use. It is empty until Main
// has set it up.
func DSN() string {
	dsnMu.RLock()
	defer dsnMu.RUnlock()
	return dsn
}

var seq atomic.Uint64

// Name returns a fresh identifier, unique across the processes sharing a
// server: prefix, the process id and a counter.
func Name(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), seq.Add(1))
}

// Schema returns the name of a fresh schema for t (it does not create it:
// the store does) and drops the schema with everything in it when t ends.
func Schema(t testing.TB) string {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if DSN() == "" {
		t.Fatal("pgtest: no server: call pgtest.Main from TestMain")
	}
	name := Name("t")
	t.Cleanup(func() {
		if err := Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", name, err)
		}
	})
	return name
}

// Database creates a fresh database for t, drops it when t ends, and
// returns a DSN for it.
func Database(t testing.TB) string {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	base := DSN()
	if base == "" {
		t.Fatal("pgtest: no server: call pgtest.Main from TestMain")
	}
	name := Name("db")
	ident := pgx.Identifier{name}.Sanitize()
	if err := Exec(context.Background(), "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return WithDatabase(base, name)
}

// WithDatabase returns dsn with its database replaced by name. dsn may be
// a URL or a keyword/value string.
func WithDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		// Replace the path of the URL.
		scheme, rest, _ := strings.Cut(dsn, "://")
		hostPart, query := rest, ""
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			hostPart, query = rest[:i], rest[i:]
		}
		if i := strings.IndexByte(hostPart, '/'); i >= 0 {
			hostPart = hostPart[:i]
		}
		return scheme + "://" + hostPart + "/" + name + query
	}
	return dsn + " dbname='" + strings.ReplaceAll(name, "'", `\'`) + "'"
}

// Exec runs one statement on the test server on a short-lived connection.
func Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, DSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Server is a throwaway PostgreSQL server in a temporary directory.
type Server struct {
	dir  string
	dsn  string
	bin  string
	args []string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the server's exit error, valid after done is closed
}

// DSN returns the server's DSN (a unix socket in its directory, user
// postgres, database postgres).
func (s *Server) DSN() string { return s.dsn }

// Dir returns the server's temporary directory.
func (s *Server) Dir() string { return s.dir }

// Binaries returns the directory holding initdb and postgres, or an error
// saying what to install.
func Binaries() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBin, d, err)
		}
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found in $PATH, $" + EnvBin +
		" or /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install -y postgresql-15) " +
		"or set " + EnvDSN + " to the DSN of a running server")
}

func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Start initialises and starts a throwaway server. Stop it with Stop.
func Start() (*Server, error) {
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cqrsgen-pg-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, initdb needs an unprivileged user and the \"postgres\" OS user was not found: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	fsync := "on"
	if strings.EqualFold(os.Getenv(EnvFsync), "off") {
		fsync = "off"
	}
	s := &Server{
		dir: dir,
		dsn: fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", dir),
		bin: bin,
		args: []string{"-D", data,
			"-k", dir, "-p", "5432",
			"-c", "listen_addresses=",
			"-c", "fsync=" + fsync,
			"-c", "max_connections=500",
			"-c", "shared_buffers=128MB",
		},
		cred: cred,
	}
	if err := s.launch(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// launch starts the server process on its data directory and waits until
// it accepts connections.
func (s *Server) launch() error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(s.cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { s.err = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		s.kill()
		return fmt.Errorf("%w\npostgres log:\n%s", err, log)
	}
	return nil
}

// Crash stops the server the way a crash would: an immediate shutdown
// (SIGQUIT), which ends every session at once and writes no shutdown
// checkpoint, so the next start runs crash recovery. It returns once the
// server process has exited.
func (s *Server) Crash() {
	s.kill()
}

// Restart starts the server again on its data directory after Crash (or
// a stop of its own), and returns once it accepts connections again (after
// crash recovery). Clients see the usual errors meanwhile: connections
// refused or reset, then SQLSTATE 57P03 while the server starts up.
func (s *Server) Restart() error {
	select {
	case <-s.done:
	default:
		return errors.New("pgtest: restart of a server that is still running: call Crash first")
	}
	return s.launch()
}

func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited during startup: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections: %v", last)
		case <-time.After(50 * time.Millisecond):
		}
		c, err := pgx.Connect(ctx, s.dsn)
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		last = err
	}
}

func (s *Server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	<-s.done
}

// Stop shuts the server down (fast shutdown: open sessions are ended) and
// removes its directory.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.kill()
	}
	return os.RemoveAll(s.dir)
}
