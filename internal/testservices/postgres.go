// Package testservices starts real servers for tests: one of each per test
// process, started on first use and stopped by StopAll (from TestMain) or,
// at the latest, when the test process dies.
package testservices

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is PostgreSQL in a temporary directory (data, sockets, log).
type pgServer struct{ *proc }

var pg shared[*pgServer]

// Postgres returns the URL of a new, empty database on a PostgreSQL server
// that listens on 127.0.0.1 and lives as long as the test process. The
// database is dropped when the test ends.
//
// Without PostgreSQL installed the test is skipped, or fails when
// NPMGATE_REQUIRE_SERVICES=1.
func Postgres(t testing.TB) string {
	t.Helper()
	srv, err := pg.get(startPostgres)
	if err != nil {
		unavailable(t, "PostgreSQL", "install it: apt-get install postgresql", err)
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
	s, ok := pg.take("stopped by StopAll")
	if !ok {
		return
	}
	// SIGINT is PostgreSQL's fast shutdown: connections are ended.
	s.end(syscall.SIGINT, 10*time.Second)
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
	s := &pgServer{newProc(dir)}
	ok := false
	defer func() {
		if !ok {
			s.end(syscall.SIGKILL, 0)
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
	if err := s.onFreePort(func() error { return s.start(bin, data, cred) }); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// start runs postgres in the foreground, to get SIGQUIT (immediate
// shutdown) when the test process dies, and waits until it accepts
// connections.
func (s *pgServer) start(bin, data string, cred *syscall.Credential) error {
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
	)
	cmd.Env = pgEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return s.launch("postgres", cmd, syscall.SIGQUIT, filepath.Join(s.dir, "postgres.log"), time.Minute, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, s.url("postgres"))
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		return c.Ping(ctx)
	})
}
