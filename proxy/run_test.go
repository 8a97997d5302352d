package proxy

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/config"
)

// loopNames are the background loops Run starts (watchPackages needs a
// database).
var loopNames = []string{"proxy.(*Server).collectGarbage", "proxy.(*metrics).measureStore", "auth.(*Service).Watch"}

// runningLoops lists which of loopNames some goroutine is in.
func runningLoops() []string {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	var out []string
	for _, n := range loopNames {
		if strings.Contains(stacks, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestNewStartsNoLoops: building a server (as explain, gc and warm do)
// starts no eviction, measuring or reloading; Run starts them and Close
// ends them.
func TestNewStartsNoLoops(t *testing.T) {
	cfg, err := config.Parse([]byte(`
data: `+t.TempDir()+`
cache:
  max_size: 1MiB
connectors:
  up:
    url: http://127.0.0.1:9
feeds:
  main:
    default: true
    connectors: [up]
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := runningLoops(); len(got) != 0 {
		srv.Close()
		t.Fatalf("New started %q", got)
	}
	srv.Run(context.Background())
	waitLoops(t, len(loopNames), "after Run")
	srv.Close()
	waitLoops(t, 0, "after Close")
}

func waitLoops(t *testing.T, want int, when string) {
	t.Helper()
	for i := 0; len(runningLoops()) != want; i++ {
		if i == 500 {
			t.Fatalf("%s: loops running %q, want %d of %q", when, runningLoops(), want, loopNames)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
