package testservices

import (
	"bufio"
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
)

// childEnv makes TestServiceChild start a server in a test process of its
// own, for TestServicesEndWithTestProcess to watch: "SERVICE MODE".
const childEnv = "NPMGATE_TESTSERVICES_CHILD"

// services are the servers this package starts, by name.
var services = map[string]struct {
	installed func() error
	start     func(t *testing.T) *proc
}{
	"postgres": {
		installed: func() error { _, err := pgBinDir(); return err },
		start:     func(t *testing.T) *proc { Postgres(t); v, _ := pg.get(nil); return v.proc },
	},
	"versitygw": {
		installed: func() error { _, err := versitygwPath(); return err },
		start:     func(t *testing.T) *proc { S3(t); v, _ := s3p.get(nil); return v.proc },
	},
}

func TestServiceChild(t *testing.T) {
	service, mode, ok := strings.Cut(os.Getenv(childEnv), " ")
	if !ok {
		t.Skip("run by TestServicesEndWithTestProcess")
	}
	p := services[service].start(t)
	fmt.Printf("child pid=%d dir=%s\n", p.cmd.Process.Pid, p.dir)
	switch mode {
	case "stop":
		StopAll()
	case "crash":
		time.Sleep(time.Minute) // until the parent kills this process
	}
}

// TestServicesEndWithTestProcess checks that each server goes when
// StopAll is called, and when the test process is killed before it could
// be.
func TestServicesEndWithTestProcess(t *testing.T) {
	for name, svc := range services {
		for _, mode := range []string{"stop", "crash"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				if err := svc.installed(); err != nil {
					unavailable(t, name, "make services", err)
				}
				t.Parallel()
				cmd := exec.Command(os.Args[0], "-test.run=^TestServiceChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), childEnv+"="+name+" "+mode)
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
					if rest, ok := strings.CutPrefix(sc.Text(), "child pid="); ok {
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
					t.Fatalf("%s (pid %d) outlived its test process (%s)", name, pid, mode)
				}
				if _, err := os.Stat(dir); mode == "stop" && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("StopAll left %s: %v", dir, err)
				}
			})
		}
	}
}

// gone waits for a process to end: no longer in /proc, or a zombie that
// nobody reaped yet.
func gone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return true
		}
		// pid (comm) S ...: the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
