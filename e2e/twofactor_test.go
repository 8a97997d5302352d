package e2e

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// totpNow is the RFC 6238 code (SHA-1, 6 digits, 30 s) of an otpauth://
// URI's secret, computed here rather than by npmgate's code.
func totpNow(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("not an otpauth://totp URI: %q", uri)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.Query().Get("secret"))
	if err != nil {
		t.Fatalf("otpauth secret: %v", err)
	}
	mac := hmac.New(sha1.New, key)
	binary.Write(mac, binary.BigEndian, time.Now().Unix()/30)
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(sum[off:])&0x7fffffff)%1000000)
}

// TestTwoFactorWrites: once alice enrols (npmgate user 2fa enable), npm
// publish with her token needs a one-time password: without one the 401
// carries WWW-Authenticate: OTP (what makes npm prompt; without a TTY it
// fails with EOTP), --otp with the current code publishes, the same code
// again, a wrong code and an unknown recovery code are refused, a
// recovery code works once, and an automation token needs none. The URI,
// codes and tokens never reach the log or the data files but the 0600
// side file, which holds only hashes of the codes (the watch scans).
func TestTwoFactorWrites(t *testing.T) {
	s := newAuthSetup(t)
	sb, locked := s.sb, s.feed("locked")
	out := gateCLI(t, s.cfg, s.g.Data, "", "user", "2fa", "enable", "alice")
	lines := strings.Fields(out)
	if len(lines) != 9 || !strings.HasPrefix(lines[0], "otpauth://totp/") {
		t.Fatalf("npmgate user 2fa enable printed:\n%s", out)
	}
	uri, recovery := lines[0], lines[1:]
	for _, c := range recovery {
		s.watch.add("recovery code", c)
	}
	secret := cliToken(t, s.g, s.cfg, "--user", "alice")
	s.watch.add("alice's token", secret)
	publish := func(t *testing.T, token, version string, args ...string) result {
		t.Helper()
		sb.setUserrc(t, npmrcKey(locked)+":_authToken="+token)
		pkg := sb.dir(t, "pkg-"+version)
		writePublishable(t, pkg, "e2e-2fa", version, nil)
		return sb.npm(t, pkg, locked, append([]string{"publish"}, args...)...)
	}

	mustFailWith(t, publish(t, secret, "1.0.0"), "npm error code EOTP")
	r, err := putPublish(locked+"e2e-2fa", npmPublishBody(t, "e2e-2fa", "1.0.0", "latest", []byte("x")), "Authorization", "Bearer "+secret)
	if err != nil || r.status != 401 || r.header.Get("WWW-Authenticate") != "OTP" || !strings.Contains(string(r.body), "one-time password") {
		t.Errorf("PUT without npm-otp: %d %q %s %v, want 401 with WWW-Authenticate: OTP", r.status, r.header.Get("WWW-Authenticate"), r.body, err)
	}

	code := totpNow(t, uri)
	mustSucceed(t, publish(t, secret, "1.0.0", "--otp="+code))
	mustFailWith(t, publish(t, secret, "1.0.1", "--otp="+code), "npm error code EOTP") // replayed
	mustFailWith(t, publish(t, secret, "1.0.1", "--otp=000000"), "npm error code EOTP")
	mustFailWith(t, publish(t, secret, "1.0.1", "--otp=notarecoverycode"), "npm error code EOTP")
	mustSucceed(t, publish(t, secret, "1.0.1", "--otp="+recovery[0]))
	mustFailWith(t, publish(t, secret, "1.0.2", "--otp="+recovery[0]), "npm error code EOTP")

	ci := cliToken(t, s.g, s.cfg, "--user", "alice", "--automation")
	s.watch.add("alice's automation token", ci)
	mustSucceed(t, publish(t, ci, "1.0.2"))

	// bob has no second factor: his writes need none.
	bobs := cliToken(t, s.g, s.cfg, "--user", "bob")
	s.watch.add("bob's token", bobs)
	sb.setUserrc(t, npmrcKey(locked)+":_authToken="+bobs)
	pkg := sb.dir(t, "bob-pkg")
	writePublishable(t, pkg, "e2e-2fa-bob", "1.0.0", nil)
	mustSucceed(t, sb.npm(t, pkg, locked, "publish"))
}

// TestRequire2FAFeed: a feed with require_2fa refuses npm publish by a
// person without a second factor, saying how to enrol; once enrolled
// the write needs a code; an automation token needs neither.
func TestRequire2FAFeed(t *testing.T) {
	w := watchSecrets(t)
	w.addPassword("alice", alicePassword)
	up := w.upstream(startUpstream(t, ""))
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	cfg := strings.Replace(strings.ReplaceAll(authConfig, "UPSTREAM", up.URL), "feeds:\n",
		"feeds:\n  strict:\n    connectors: [npmjs]\n    require_2fa: true\n    access:\n      read: [$authenticated]\n      publish: [$authenticated]\n", 1)
	writeFile(t, file, cfg)
	addGateUser(t, file, data, "alice", alicePassword)
	g := w.gate(t, startGate(t, up.URL, data, "--config", file))
	sb := newSandbox(t)
	strict := g.URL + "npm/strict/"
	publish := func(t *testing.T, token, name string, args ...string) result {
		t.Helper()
		sb.setUserrc(t, npmrcKey(strict)+":_authToken="+token)
		pkg := sb.dir(t, "pkg-"+name)
		writePublishable(t, pkg, name, "1.0.0", nil)
		return sb.npm(t, pkg, strict, append([]string{"publish"}, args...)...)
	}
	secret := cliToken(t, g, file, "--user", "alice")
	w.add("alice's token", secret)
	mustFailWith(t, publish(t, secret, "e2e-strict-a"), "npm error code E403", "npm profile enable-2fa auth-and-writes")

	ci := cliToken(t, g, file, "--user", "alice", "--automation")
	w.add("alice's automation token", ci)
	mustSucceed(t, publish(t, ci, "e2e-strict-ci"))

	out := gateCLI(t, file, data, "", "user", "2fa", "enable", "alice")
	uri := strings.Fields(out)[0]
	for _, c := range strings.Fields(out)[1:] {
		w.add("recovery code", c)
	}
	mustFailWith(t, publish(t, secret, "e2e-strict-a"), "npm error code EOTP")
	mustSucceed(t, publish(t, secret, "e2e-strict-a", "--otp="+totpNow(t, uri)))
}

// TestProfileEnable2FA: npm profile enable-2fa auth-and-writes as npm
// sends it (the profile's tfa with mode and password, then a code of the
// new secret) enrols bob, printing recovery codes; npm profile get shows
// it; then npm publish needs --otp.
func TestProfileEnable2FA(t *testing.T) {
	s := newAuthSetup(t)
	sb, locked := s.sb, s.feed("locked")
	secret := cliToken(t, s.g, s.cfg, "--user", "bob")
	s.watch.add("bob's token", secret)
	sb.setUserrc(t, npmrcKey(locked)+":_authToken="+secret)
	project := sb.dir(t, "project")
	var otpSecret string
	r := sb.npmAnswering(t, project, locked, []string{"npm password:", "OTP code from your authenticator:"}, func(i int, out string) string {
		if i == 0 {
			return bobPassword
		}
		_, rest, _ := strings.Cut(out, "Or enter code:")
		otpSecret = strings.Fields(rest)[0]
		s.watch.add("bob's TOTP secret (npm prints it)", otpSecret)
		return totpNow(t, "otpauth://totp/x?secret="+otpSecret)
	}, "profile", "enable-2fa", "auth-and-writes")
	mustSucceed(t, r)
	if !strings.Contains(r.out, "2FA successfully enabled") {
		t.Fatalf("npm profile enable-2fa:\n%s", r)
	}
	_, codes, _ := strings.Cut(r.out, "please print these out.")
	n := 0
	for _, line := range strings.Split(codes, "\n") {
		if c := strings.TrimSpace(line); len(c) == 16 {
			s.watch.add("recovery code", c)
			n++
		}
	}
	if n != 8 {
		t.Errorf("npm printed %d recovery codes:\n%s", n, r)
	}
	r = sb.npm(t, project, locked, "profile", "get", "--json")
	mustSucceed(t, r)
	if !strings.Contains(r.out, `"mode": "auth-and-writes"`) {
		t.Errorf("npm profile get:\n%s", r)
	}
	pkg := sb.dir(t, "pkg")
	writePublishable(t, pkg, "e2e-profile-2fa", "1.0.0", nil)
	mustFailWith(t, sb.npm(t, pkg, locked, "publish"), "npm error code EOTP")
	// The code the enrolment used is spent: the next step's is needed.
	time.Sleep(time.Until(time.Unix((time.Now().Unix()/30+1)*30, 0)))
	mustSucceed(t, sb.npm(t, pkg, locked, "publish", "--otp="+totpNow(t, "otpauth://totp/x?secret="+otpSecret)))
}

// TestScaleOutTwoFactor: with replicas, second factors live in the
// database: alice enrolled with the CLI (which writes there) is asked for
// a code by every replica, not only the one that might have kept her
// enrolment; a code accepted at one replica is refused at another; a
// recovery code spent at one is spent at all.
func TestScaleOutTwoFactor(t *testing.T) {
	up := startUpstream(t, "")
	c := startCluster(t, up.URL)
	r1, r2, r3 := c.replicas[0], c.replicas[1], c.replicas[2]
	token := c.token(t, "alice", alicePassword)
	out := gateCLI(t, c.cfg, t.TempDir(), "", "user", "2fa", "enable", "alice")
	fields := strings.Fields(out)
	if len(fields) != 9 || !strings.HasPrefix(fields[0], "otpauth://totp/") {
		t.Fatalf("npmgate user 2fa enable with a database printed:\n%s", out)
	}
	uri, recovery := fields[0], fields[1:]

	sb := newSandbox(t)
	sb.setUserrc(t, npmrcKey(r2.URL)+":_authToken="+token)
	pkg := sb.dir(t, "pkg")
	writePublishable(t, pkg, "@corp/twofa", "1.0.0", nil)
	mustFailWith(t, sb.npm(t, pkg, r2.URL, "publish"), "npm error code EOTP")
	code := totpNow(t, uri)
	mustSucceed(t, sb.npm(t, pkg, r2.URL, "publish", "--otp="+code))

	publish := func(g *gate, version string, otp string) response {
		t.Helper()
		r, err := putPublish(g.URL+"@corp%2ftwofa", npmPublishBody(t, "@corp/twofa", version, "latest", npmTarball(t, "@corp/twofa", version)),
			"Authorization", "Bearer "+token, "npm-otp", otp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i, tt := range []struct {
		g      *gate
		otp    string
		status int
	}{
		{r3, code, 401},        // the code replica two accepted
		{r1, recovery[0], 200}, // a recovery code, at replica one
		{r3, recovery[0], 401}, // spent, at replica three
		{r1, "", 401},
	} {
		if r := publish(tt.g, fmt.Sprintf("1.0.%d", i+1), tt.otp); r.status != tt.status {
			t.Errorf("write %d (npm-otp %q): %d %s, want %d", i, tt.otp, r.status, r.body, tt.status)
		}
	}
	gateCLI(t, c.cfg, t.TempDir(), "", "user", "2fa", "disable", "alice")
	if r := publish(r3, "1.1.0", ""); r.status != 200 {
		t.Errorf("after the CLI disabled alice's second factor: %d %s", r.status, r.body)
	}
}
