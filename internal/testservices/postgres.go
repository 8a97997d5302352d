// Package testservices starts real servers for tests: one of each per test
// process, started on first use and stopped by StopAll (from TestMain) or,
// at the latest, when the test process dies.
package testservices

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireEnv, set to 1, turns a missing service into a test failure
// instead of a skip (for CI, where every test must run).
const requireEnv = "NPMGATE_REQUIRE_SERVICES"

// errMissing marks a service that cannot run on this machine at all (not
// installed), as opposed to one that failed to start.
var errMissing = errors.New("not installed")

type pgServer struct {
	dir    string // temporary directory: data, sockets, log
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the postgres process has ended
	stop   chan struct{} // closed when stopped: the starting goroutine may end
}

var (
	pgOnce sync.Once
	pg     *pgServer
	pgErr  error
	pgMu   sync.Mutex // guards stopping
)

// Postgres returns the URL of a new, empty database on a PostgreSQL server
// that listens on 127.0.0.1 and lives as long as the test process. The
// database is dropped when the test ends.
//
// Without PostgreSQL installed the test is skipped, or fails when
// NPMGATE_REQUIRE_SERVICES=1.
func Postgres(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		s, err := startPostgres()
		pgMu.Lock()
		pg, pgErr = s, err
		pgMu.Unlock()
	})
	pgMu.Lock()
	srv, err := pg, pgErr
	pgMu.Unlock()
	if err != nil {
		if errors.Is(err, errMissing) && os.Getenv(requireEnv) != "1" {
			t.Skipf("PostgreSQL is not available: %v (install it: apt-get install postgresql; set %s=1 to fail instead of skipping)", err, requireEnv)
		}
		t.Fatalf("PostgreSQL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, srv.url("postgres"))
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer admin.Close(context.Background())
	b := make([]byte, 8)
	rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("PostgreSQL: create database: %v", err)
	}
	t.Cleanup(func() {
		// Runs after the test's own cleanups (closing its pools); FORCE
		// ends connections a test left open.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, srv.url("postgres")); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return srv.url(name)
}

// StopAll stops the servers this process started (PostgreSQL and S3) and
// removes their files. Call it from TestMain after m.Run.
func StopAll() {
	stopPostgres()
	StopS3()
}

func stopPostgres() {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pg == nil {
		return
	}
	s := pg
	pg, pgErr = nil, errors.New("stopped by StopAll")
	if s.cmd != nil && s.cmd.Process != nil {
		// SIGINT is PostgreSQL's fast shutdown: connections are ended.
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	close(s.stop)
	os.RemoveAll(s.dir)
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// pgBinDir finds the directory with initdb and postgres: $PATH first,
// then the highest version under /usr/lib/postgresql (Debian, Ubuntu).
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		return versionOf(b) - versionOf(a) // highest first
	})
	for _, dir := range dirs {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("initdb and postgres: %w (neither in $PATH nor in /usr/lib/postgresql/*/bin)", errMissing)
}

// versionOf reads the major version out of /usr/lib/postgresql/15/bin.
func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// runAs says which user runs initdb and postgres: PostgreSQL refuses to run
// as root, so root hands them to the postgres user.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as: %w", errMissing)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user postgres: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// pgEnv is the environment without PG* variables, which would point the
// tools at another server or data directory.
func pgEnv() []string {
	env := []string{"LC_ALL=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			env = append(env, kv)
		}
	}
	return env
}

func startPostgres() (*pgServer, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "npmgate-postgres-")
	if err != nil {
		return nil, err
	}
	s := &pgServer{dir: dir, exited: make(chan struct{}), stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			if s.cmd != nil && s.cmd.Process != nil {
				s.cmd.Process.Kill()
				<-s.exited
			}
			close(s.stop)
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir, initdb.Env = dir, pgEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// The port is free when asked, and may be taken before postgres binds
	// it: then postgres exits, and another port is tried.
	for attempt := 0; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			return nil, err
		}
		err = s.start(bin, data, cred)
		if err == nil {
			ok = true
			return s, nil
		}
		if attempt == 2 {
			return nil, err
		}
		s.cmd = nil
		s.exited = make(chan struct{})
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres in the foreground and waits until it accepts
// connections. The process is started from a goroutine locked to its OS
// thread, which then stays alive until StopAll: the parent-death signal
// follows the thread that started the child, so postgres gets SIGQUIT
// (immediate shutdown) when the test process dies, not when some thread of
// it happens to exit.
func (s *pgServer) start(bin, data string, cred *syscall.Credential) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
	)
	cmd.Dir, cmd.Env = s.dir, pgEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	started := make(chan error, 1)
	exited, stop := s.exited, s.stop
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with the goroutine, after
		// postgres has.
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
		<-stop
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.cmd = cmd

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.url("postgres"))
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited on start (port %d); its log:\n%s", s.port, tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres did not accept connections within a minute: %v; its log:\n%s", err, tail(logPath))
		}
	}
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "(no log)"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
