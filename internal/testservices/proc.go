package testservices

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireEnv, set to 1, turns a missing service into a test failure
// instead of a skip (for CI, where every test must run).
const requireEnv = "NPMGATE_REQUIRE_SERVICES"

// errMissing marks a service that cannot run on this machine at all (not
// installed), as opposed to one that failed to start.
var errMissing = errors.New("not installed")

// unavailable ends a test whose service could not start: a skip when it
// is not installed (unless NPMGATE_REQUIRE_SERVICES=1), else a failure.
func unavailable(t testing.TB, what, install string, err error) {
	t.Helper()
	if errors.Is(err, errMissing) && os.Getenv(requireEnv) != "1" {
		t.Skipf("%s is not available: %v (%s; set %s=1 to fail instead of skipping)", what, err, install, requireEnv)
	}
	t.Fatalf("%s: %v", what, err)
}

// shared is a server started at most once per test process, which a
// Stop function can take down again; after that, get reports it stopped.
type shared[T any] struct {
	once sync.Once
	mu   sync.Mutex // guards v and err against a concurrent stop
	v    T
	err  error
	up   bool
}

func (s *shared[T]) get(start func() (T, error)) (T, error) {
	s.once.Do(func() {
		v, err := start()
		s.mu.Lock()
		s.v, s.err, s.up = v, err, err == nil
		s.mu.Unlock()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.err
}

// take returns the running server, if any, and marks it stopped by why.
func (s *shared[T]) take(why string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, up := s.v, s.up
	var zero T
	s.v, s.err, s.up = zero, errors.New(why), false
	return v, up
}

// proc is a server process of the test process, in a temporary directory.
type proc struct {
	dir    string // temporary directory: data, log
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended
	stop   chan struct{} // closed by end: the starting goroutine may end
}

func newProc(dir string) *proc {
	return &proc{dir: dir, exited: make(chan struct{}), stop: make(chan struct{})}
}

// onFreePort calls start with p.port set to a free port. The port is free
// when asked and may be taken before the server binds it: then the server
// exits, and another port is tried.
func (p *proc) onFreePort(start func() error) error {
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		p.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		err = start()
		if err == nil || attempt == 2 {
			return err
		}
		close(p.stop)
		p.cmd, p.exited, p.stop = nil, make(chan struct{}), make(chan struct{})
	}
}

// launch starts cmd, writing to logPath, and waits until ready passes.
// The process is started from a goroutine locked to its OS thread, which
// then stays alive until end: the parent-death signal (deathSig) follows
// the thread that started the child, so the server gets it when the test
// process dies, not when some thread of it happens to exit.
func (p *proc) launch(name string, cmd *exec.Cmd, deathSig syscall.Signal, logPath string, within time.Duration, ready func(context.Context) error) error {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = deathSig
	started := make(chan error, 1)
	exited, stop := p.exited, p.stop
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with the goroutine, after the
		// server has.
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
		return fmt.Errorf("%s: %w", name, err)
	}
	p.cmd = cmd

	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited on start (port %d); its log:\n%s", name, p.port, tail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not answer within %s: %v; its log:\n%s", name, within, err, tail(logPath))
		}
	}
}

// end stops the process with sig (killing it after wait) and removes its
// directory.
func (p *proc) end(sig syscall.Signal, wait time.Duration) {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
		select {
		case <-p.exited:
		case <-time.After(wait):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	close(p.stop)
	os.RemoveAll(p.dir)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
