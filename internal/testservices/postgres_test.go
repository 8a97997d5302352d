package testservices

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

func TestPostgresGivesFreshDatabases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := Postgres(t), Postgres(t)
	if a == b || !strings.HasPrefix(a, "postgres://postgres@127.0.0.1:") {
		t.Fatalf("URLs %q and %q", a, b)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil || n != 0 {
		t.Errorf("the second database is not empty: %d tables, %v", n, err)
	}
	var fsync, listen string
	ca.QueryRow(ctx, "SHOW fsync").Scan(&fsync)
	ca.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen)
	if fsync != "off" || listen != "127.0.0.1" {
		t.Errorf("fsync %q, listen_addresses %q", fsync, listen)
	}
}

// pgChildEnv makes TestPostgresChild start a server in a test process of
// its own, for TestPostgresEndsWithTestProcess to watch.
const pgChildEnv = "NPMGATE_TESTSERVICES_PG_CHILD"

func TestPostgresChild(t *testing.T) {
	mode := os.Getenv(pgChildEnv)
	if mode == "" {
		t.Skip("run by TestPostgresEndsWithTestProcess")
	}
	Postgres(t)
	fmt.Printf("postgres pid=%d dir=%s\n", pg.cmd.Process.Pid, pg.dir)
	switch mode {
	case "stop":
		StopAll()
	case "crash":
		time.Sleep(time.Minute) // until the parent kills this process
	}
}

// TestPostgresEndsWithTestProcess checks that the server goes when StopAll
// is called, and when the test process is killed before it could be.
func TestPostgresEndsWithTestProcess(t *testing.T) {
	if _, err := pgBinDir(); err != nil {
		if os.Getenv(requireEnv) != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	for _, mode := range []string{"stop", "crash"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), pgChildEnv+"="+mode)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid, dir := 0, ""
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "postgres pid="); ok {
					p, d, _ := strings.Cut(rest, " dir=")
					pid, _ = strconv.Atoi(p)
					dir = d
					break
				}
			}
			if mode == "crash" {
				cmd.Process.Kill()
			}
			go io.Copy(io.Discard, out)
			err = cmd.Wait()
			if pid == 0 {
				t.Fatalf("the child printed no pid (exit: %v)", err)
			}
			if mode == "crash" {
				defer os.RemoveAll(dir) // nobody else will
			}
			if !gone(pid, 10*time.Second) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("postgres (pid %d) outlived its test process (%s)", pid, mode)
			}
			if _, err := os.Stat(dir); mode == "stop" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("StopAll left %s: %v", dir, err)
			}
		})
	}
}
