package e2e

import (
	"slices"
	"strings"
	"testing"
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
