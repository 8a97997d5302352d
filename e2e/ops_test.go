package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAuthTokenCreatedWhileServing: a token made with npmgate token create
// while the server runs works on its very first request, as a CI job
// started right after creating it needs, with npm and with plain HTTP;
// revoking one still takes effect within the reload interval.
func TestAuthTokenCreatedWhileServing(t *testing.T) {
	s := newAuthSetup(t)
	locked := s.feed("locked")
	for i := range 20 {
		secret := cliToken(t, s.g, s.cfg, "--user", "bob")
		s.watch.add("bob's token", secret)
		if i%5 == 0 {
			s.sb.setUserrc(t, npmrcKey(locked)+":_authToken="+secret)
			r := s.sb.npm(t, s.sb.dir(t, "whoami"), locked, "whoami")
			mustSucceed(t, r)
			if !slices.Contains(strings.Split(r.out, "\n"), "bob") {
				t.Fatalf("npm whoami with token %d right after creating it:\n%s", i, r)
			}
			continue
		}
		if r := get(t, locked+"-/whoami", "Authorization", "Bearer "+secret); r.status != 200 || !strings.Contains(string(r.body), `"bob"`) {
			t.Fatalf("token %d on its first request: %d %s, want 200", i, r.status, r.body)
		}
	}
	secret := cliToken(t, s.g, s.cfg, "--user", "bob")
	s.watch.add("bob's token", secret)
	if r := get(t, locked+"-/whoami", "Authorization", "Bearer "+secret); r.status != 200 {
		t.Fatalf("new token: %d %s", r.status, r.body)
	}
	gateCLI(t, s.cfg, s.g.Data, "", "token", "revoke", tokenKeyOf(secret)[:16])
	waitCredential(t, s.g, "Bearer "+secret, 401)
	if r := get(t, locked+"-/whoami", "Authorization", "Bearer "+secret); r.status != 401 {
		t.Errorf("revoked token: %d %s, want 401", r.status, r.body)
	}
}

// TestSecondServerOnOneDataDirectory: a second npmgate serve on a data
// directory a running server uses exits at once with a message naming
// the directory; the first keeps serving, and tools still work beside it.
func TestSecondServerOnOneDataDirectory(t *testing.T) {
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	if r := get(t, g.URL+"ms"); r.status != 200 {
		t.Fatalf("GET ms: %d", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gateBin, "serve", "--listen", "127.0.0.1:0", "--data", g.Data, "--upstream", up.URL)
	cmd.Env = cleanEnv(nil)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("second npmgate serve on %s: exit %d, want 1:\n%s", g.Data, code, out)
	}
	for _, want := range []string{g.Data, "in use by another npmgate server", "its own data directory"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the second server's message lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "listening") {
		t.Errorf("the second server listened:\n%s", out)
	}
	// The first still serves, and a tool runs beside it.
	if r := get(t, g.URL+"readyz"); r.status != 200 {
		t.Errorf("first server /readyz: %d %s", r.status, r.body)
	}
	if r := get(t, g.URL+"ms/-/ms-2.1.3.tgz"); r.status != 200 {
		t.Errorf("first server tarball: %d", r.status)
	}
	if _, errOut, code := gateCLIResult(t, "", g.Data, "", "gc", "--max-size", "1GiB"); code != 0 {
		t.Errorf("npmgate gc beside the server: exit %d\n%s", code, errOut)
	}
	// Once the first stops, a server starts on the directory.
	g.stop(t)
	startGate(t, up.URL, g.Data)
}
