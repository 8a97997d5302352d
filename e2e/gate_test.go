package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

const (
	startTimeout = 15 * time.Second // until npmgate is listening and ready
	stopTimeout  = 40 * time.Second // SIGTERM to exit (npmgate's own limit is 30s)
)

// httpc talks to npmgate directly: no proxy from the environment, no
// transparent decompression surprises for tarballs.
var httpc = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// upstream is a fake upstream registry whose request log is shown when the
// test fails.
type upstream struct {
	*fakeupstream.Server
	log *syncBuffer
}

// startUpstream serves the recorded registry (or dir, when given) on
// loopback until the test ends.
func startUpstream(t *testing.T, dir string, opts ...fakeupstream.Option) *upstream {
	t.Helper()
	if dir == "" {
		dir = fakeupstream.Dir()
	}
	log := &syncBuffer{}
	opts = append(opts, fakeupstream.WithLogf(func(format string, args ...any) {
		fmt.Fprintf(log, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}))
	s := fakeupstream.Start(t, dir, opts...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fake upstream %s log:\n%s", s.URL, log.String())
		}
	})
	return &upstream{Server: s, log: log}
}

// gate is a running `npmgate serve` process.
type gate struct {
	// URL is the base URL npmgate logged, with a trailing slash.
	URL string
	// Data is its data directory.
	Data string
	cmd  *exec.Cmd
	log  *gateLog
	done chan struct{} // closed when the process has exited
	// stopped is set once the test has checked the exit.
	stopped bool
}

// gateLog collects npmgate's stderr and reports the listening URL once.
type gateLog struct {
	syncBuffer
	found atomic.Bool
	urlc  chan string
}

var listenLine = regexp.MustCompile(`(?m)^.*msg="npmgate listening".*\burl=(http://127\.0\.0\.1:[0-9]+/)(?:\s|$)`)

func (l *gateLog) Write(p []byte) (int, error) {
	n, err := l.syncBuffer.Write(p)
	if !l.found.Load() {
		if m := listenLine.FindStringSubmatch(l.String()); m != nil {
			l.found.Store(true)
			l.urlc <- m[1]
		}
	}
	return n, err
}

// startGate runs npmgate against upstreamURL with a fresh data directory
// (or data, when not empty), waits until /readyz answers 200, and at the end
// of the test stops it with SIGTERM and checks that it exits 0.
func startGate(t *testing.T, upstreamURL, data string, extraArgs ...string) *gate {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	args := append([]string{"--listen", "127.0.0.1:0", "--data", data, "--upstream", upstreamURL}, extraArgs...)
	return startGateWith(t, data, nil, args...)
}

// startGateWith runs `npmgate serve args...` with env added to a clean
// environment; data is its data directory, for the tests to inspect.
func startGateWith(t *testing.T, data string, env []string, args ...string) *gate {
	t.Helper()
	cmd := exec.Command(gateBin, append([]string{"serve"}, args...)...)
	cmd.Env = cleanEnv(env)
	log := &gateLog{urlc: make(chan string, 1)}
	cmd.Stdout = log
	cmd.Stderr = log
	g := &gate{Data: data, cmd: cmd, log: log, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting npmgate: %v", err)
	}
	go func() {
		cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		if !g.stopped {
			g.stop(t)
		}
		if t.Failed() {
			t.Logf("npmgate (%s, data %s) log:\n%s", g.URL, g.Data, g.log.String())
		}
	})

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case g.URL = <-log.urlc:
	case <-g.done:
		g.stopped = true
		t.Fatalf("npmgate exited before listening (exit %d):\n%s", cmd.ProcessState.ExitCode(), log.String())
	case <-deadline.C:
		t.Fatalf("npmgate did not log %q within %s:\n%s", `msg="npmgate listening"`, startTimeout, log.String())
	}
	for {
		resp, err := httpc.Get(g.URL + "readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case <-g.done:
			g.stopped = true
			t.Fatalf("npmgate exited before it was ready (exit %d)", cmd.ProcessState.ExitCode())
		case <-deadline.C:
			t.Fatalf("npmgate at %s not ready within %s (last: %v)", g.URL, startTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// signal sends sig to the process.
func (g *gate) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling npmgate: %v", err)
	}
}

// wait waits for the process to exit and returns its exit code, or fails
// the test (and kills the process) if it is still running after stopTimeout.
func (g *gate) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-g.done:
	case <-time.After(stopTimeout):
		g.cmd.Process.Kill()
		<-g.done
		g.stopped = true
		t.Fatalf("npmgate did not exit within %s of SIGTERM", stopTimeout)
	}
	g.stopped = true
	return g.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and checks that npmgate exits 0.
func (g *gate) stop(t testing.TB) {
	t.Helper()
	select {
	case <-g.done:
		g.stopped = true
		t.Errorf("npmgate had already exited (exit %d) before the test stopped it", g.cmd.ProcessState.ExitCode())
		return
	default:
	}
	httpc.CloseIdleConnections()
	g.signal(t, syscall.SIGTERM)
	if code := g.wait(t); code != 0 {
		t.Errorf("npmgate exited %d after SIGTERM, want 0", code)
	}
}

// logText is npmgate's log so far.
func (g *gate) logText() string { return g.log.String() }

// response is a whole HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// get fetches url; headers are name, value pairs.
func get(t *testing.T, url string, headers ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, headers...)
}

func do(t *testing.T, method, url string, headers ...string) response {
	t.Helper()
	r, err := fetch(method, url, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetch is do without a test, for goroutines. When the body cannot be
// read to its end, the answer so far comes with the error.
func fetch(method, url string, headers ...string) (response, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: body}
	if err != nil {
		return r, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	return r, nil
}

// cleanEnv is the process environment without anything that configures npm,
// yarn, pnpm, npmgate, proxies or the home directory, plus extra.
func cleanEnv(extra []string) []string {
	drop := []string{"npm_", "yarn_", "pnpm_", "npmgate_", "corepack_", "xdg_", "node_options", "node_extra_ca_certs",
		"http_proxy", "https_proxy", "no_proxy", "all_proxy", "home", "userprofile", "ci", "berry_"}
	var env []string
outer:
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		lk := strings.ToLower(k)
		for _, d := range drop {
			if lk == d || (strings.HasSuffix(d, "_") && strings.HasPrefix(lk, d)) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
