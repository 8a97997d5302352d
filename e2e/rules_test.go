package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBadRuleRefusedEverywhere: a file whose filter or access list does
// not compile is refused by check-config, by serve at start and by a
// SIGHUP reload (the running rules stay), each time with the same error
// naming the file and the line of the key.
func TestBadRuleRefusedEverywhere(t *testing.T) {
	up := startUpstream(t, "")
	g, file := fltStartGate(t, up.URL, fltConfig(up.URL, "", `exclude: ["ms"]`))
	excluded := fltWantError(t, g.URL+"ms", 404, `ms is excluded by exclude entry "ms"`)
	refused := regexp.MustCompile(`(?m)^.*level=ERROR.*msg="configuration reload refused[^"]*".*$`)

	tests := []struct {
		name, cfg string
		// line and msg are the error after the file's name.
		line int
		msg  string
	}{
		{"unknown key in a connector's filter", fltConfig(up.URL, "blok: [x]", ""), 9,
			"field blok not found in type filter.Spec"},
		{"bad value in a feed's filter", fltConfig(up.URL, "", "deprecated: maybe"), 12,
			`feeds.npm.filter: deprecated: "maybe": want "pass" or "hide"`},
		{"bad subject in a feed's access list", fltConfig(up.URL, "", "") + "    access:\n      read: [$everyone]\n", 13,
			`feeds.npm.access.read: unknown subject "$everyone" (use $anonymous, $authenticated, a user or a group)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			writeFile(t, bad, tt.cfg)
			want := bad + ":" + strconv.Itoa(tt.line) + ": " + tt.msg

			code, stdout, stderr := runGate(t, "check-config", bad)
			if code != 1 || stdout != "" || stderr != "npmgate: "+want+"\n" {
				t.Errorf("check-config: exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, "npmgate: "+want)
			}
			code, _, stderr = runGate(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--config", bad)
			if code != 1 || stderr != "npmgate: "+want+"\n" {
				t.Errorf("serve: exit %d, stderr %q; want 1 and %q", code, stderr, "npmgate: "+want)
			}

			writeFile(t, file, tt.cfg)
			want = file + ":" + strconv.Itoa(tt.line) + ": " + tt.msg
			n := len(refused.FindAllString(g.logText(), -1))
			g.signal(t, syscall.SIGHUP)
			deadline := time.Now().Add(10 * time.Second)
			for len(refused.FindAllString(g.logText(), -1)) <= n {
				if time.Now().After(deadline) {
					t.Fatalf("npmgate did not log %s within 10s of SIGHUP", refused)
				}
				time.Sleep(50 * time.Millisecond)
			}
			line := refused.FindAllString(g.logText(), -1)[n]
			if quoted := strconv.Quote(want); !strings.Contains(line, "err="+quoted) {
				t.Errorf("the refusal does not say %s: %s", quoted, line)
			}
			if msg := fltWantError(t, g.URL+"ms", 404); msg != excluded {
				t.Errorf("GET /ms after the refused reload: %q, want the running rules' %q", msg, excluded)
			}
		})
	}
}

// runGate runs the npmgate binary with args and returns its exit code and
// output.
func runGate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gateBin, args...)
	cmd.Env = cleanEnv(nil)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("npmgate %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}
