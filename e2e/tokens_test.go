package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGranularTokens drives the limits of granular tokens with the real
// npm CLI: a token limited to packages, to address ranges or to one
// write is refused, by npm publish, with a message naming the limit;
// npm token create sends npm 11's limits and npm token list shows them
// with the last use; write tokens expire by default, and no token may
// ask for more than auth.tokens.max_ttl. No secret reaches the log or the
// data files (the watch scans them).
func TestGranularTokens(t *testing.T) {
	s := newAuthSetup(t)
	sb, locked := s.sb, s.feed("locked")
	publish := func(t *testing.T, secret, name, version string) result {
		t.Helper()
		sb.setUserrc(t, npmrcKey(locked)+":_authToken="+secret)
		pkg := sb.dir(t, "pkg-"+name+"-"+version)
		writePublishable(t, pkg, name, version, nil)
		return sb.npm(t, pkg, locked, "publish")
	}
	token := func(t *testing.T, args ...string) string {
		t.Helper()
		secret := cliToken(t, s.g, s.cfg, append([]string{"--user", "bob"}, args...)...)
		s.watch.add("bob's token", secret)
		return secret
	}

	t.Run("limited to packages", func(t *testing.T) {
		secret := token(t, "--package", "e2e-tok-allowed", "--package", "e2e-tok-pat-*")
		mustFailWith(t, publish(t, secret, "e2e-tok-other", "1.0.0"), "npm error code E403",
			"token limited to packages e2e-tok-allowed,e2e-tok-pat-*: cannot publish e2e-tok-other")
		if r := get(t, locked+"e2e-tok-other", "Authorization", "Basic "+basicAuth("alice", alicePassword)); r.status != 404 {
			t.Errorf("the refused package exists: %d %s", r.status, r.body)
		}
		mustSucceed(t, publish(t, secret, "e2e-tok-allowed", "1.0.0"))
		mustSucceed(t, publish(t, secret, "e2e-tok-pat-one", "1.0.0"))
		// dist-tag changes are writes of the package too.
		sb.setUserrc(t, npmrcKey(locked)+":_authToken="+secret)
		mustSucceed(t, sb.npm(t, sb.dir(t, "tags"), locked, "dist-tag", "add", "e2e-tok-allowed@1.0.0", "stable"))
	})

	t.Run("limited to address ranges", func(t *testing.T) {
		secret := token(t, "--cidr", "192.168.0.0/16")
		mustFailWith(t, publish(t, secret, "e2e-tok-cidr", "1.0.0"), "npm error code E403",
			"token not valid from 127.0.0.1 (cidr 192.168.0.0/16)")
		ok := token(t, "--cidr", "192.168.0.0/16", "--cidr", "127.0.0.0/8")
		mustSucceed(t, publish(t, ok, "e2e-tok-cidr", "1.0.0"))
	})

	t.Run("one use", func(t *testing.T) {
		secret := token(t, "--max-uses", "1")
		mustSucceed(t, publish(t, secret, "e2e-tok-once", "1.0.0"))
		mustFailWith(t, publish(t, secret, "e2e-tok-once", "1.0.1"), "npm error code E403", "token already used")
		if r := get(t, locked+"e2e-tok-once", "Authorization", "Basic "+basicAuth("alice", alicePassword)); r.status != 200 || strings.Contains(string(r.body), `"1.0.1"`) {
			t.Errorf("after the refused second use: %d %s", r.status, r.body)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		token(t)
		list := gateCLI(t, s.cfg, s.g.Data, "", "token", "list", "--user", "bob")
		for _, line := range strings.Split(list, "\n")[1:] {
			if f := strings.Fields(line); len(f) > 6 && f[3] == "false" && f[6] == "never" {
				t.Errorf("a new write token never expires:\n%s", list)
			}
		}
		_, errOut, code := gateCLIResult(t, s.cfg, s.g.Data, "", "token", "create", "--user", "bob", "--expires", "365d")
		if code == 0 || !strings.Contains(errOut, "90 days at most") {
			t.Errorf("token create --expires 365d: exit %d %s, want a refusal naming the maximum", code, errOut)
		}
	})

	t.Run("npm token create and list", func(t *testing.T) {
		secret := token(t)
		project := sb.dir(t, "project")
		sb.setUserrc(t, npmrcKey(locked)+":_authToken="+secret)
		r := sb.npm(t, project, locked, "token", "create", "--password="+bobPassword, "--name=ci",
			"--cidr=127.0.0.0/8", "--packages=e2e-tok-npm", "--scopes=@acme", "--expires=7")
		mustSucceed(t, r)
		for _, want := range []string{"with IP whitelist: 127.0.0.0/8", "expires: "} {
			if !strings.Contains(r.out, want) {
				t.Errorf("npm token create output lacks %q:\n%s", want, r)
			}
		}
		var created string
		for _, f := range strings.Fields(r.out) {
			if strings.HasPrefix(f, "npmg_") {
				created = f
			}
		}
		if created == "" {
			t.Fatalf("npm token create printed no token:\n%s", r)
		}
		s.watch.add("token from npm token create", created)
		mustFailWith(t, publish(t, created, "e2e-tok-notnpm", "1.0.0"), "npm error code E403", "cannot publish e2e-tok-notnpm")
		mustSucceed(t, publish(t, created, "e2e-tok-npm", "1.0.0"))

		// More than the maximum is refused with what to do.
		sb.setUserrc(t, npmrcKey(locked)+":_authToken="+secret)
		mustFailWith(t, sb.npm(t, project, locked, "token", "create", "--password="+bobPassword, "--expires=400"), "npm error code E400")

		r = sb.npm(t, project, locked, "token", "list", "--json")
		mustSucceed(t, r)
		var listed []struct {
			Key      string   `json:"key"`
			Name     string   `json:"name"`
			CIDRs    []string `json:"cidr_whitelist"`
			Packages []string `json:"packages"`
			Expires  string   `json:"expires"`
			LastUsed string   `json:"lastUsed"`
		}
		if err := json.Unmarshal([]byte(npmJSONOutput(r.out)), &listed); err != nil {
			t.Fatalf("npm token list --json: %v\n%s", err, r)
		}
		found := false
		for _, l := range listed {
			if l.Key != tokenKeyOf(created) {
				continue
			}
			found = true
			if l.Name != "ci" || strings.Join(l.CIDRs, ",") != "127.0.0.0/8" || strings.Join(l.Packages, ",") != "e2e-tok-npm,@acme/*" ||
				l.Expires == "" || l.LastUsed == "" {
				t.Errorf("npm token list shows %+v", l)
			}
		}
		if !found {
			t.Errorf("npm token list lacks the created token:\n%s", r)
		}
		if strings.Contains(r.out, created) {
			t.Errorf("npm token list shows the whole token")
		}
	})
}
