package auth

import (
	"errors"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestTokenWriteLimits(t *testing.T) {
	for _, tc := range []struct {
		packages []string
		pkg      string
		ok       bool
	}{
		{nil, "left-pad", true},
		{[]string{"@acme/*"}, "@acme/x", true},
		{[]string{"@acme/*"}, "left-pad", false},
		{[]string{"@acme/*"}, "@other/x", false},
		{[]string{"left-pad"}, "left-pad", true},
		{[]string{"left-pad"}, "left-pad2", false},
	} {
		p := &Principal{Name: "bob", Packages: tc.packages}
		err := p.MayWrite("publish", tc.pkg)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("packages %v, publish %s: %v, want ok=%v", tc.packages, tc.pkg, err, tc.ok)
		}
	}
	if err := (&Principal{Packages: []string{"@acme/*"}}).MayWrite("publish", "left-pad"); err == nil ||
		err.Error() != "token limited to packages @acme/*: cannot publish left-pad" {
		t.Errorf("message: %v", err)
	}
	for _, tc := range []struct {
		cidrs  []string
		client string
		ok     bool
	}{
		{nil, "10.0.0.5", true},
		{[]string{"192.168.0.0/16"}, "10.0.0.5", false},
		{[]string{"192.168.0.0/16", "10.0.0.0/8"}, "10.0.0.5", true},
		{[]string{"10.0.0.0/8"}, "::ffff:10.0.0.5", true},
	} {
		err := checkCIDRs(&Token{CIDRs: tc.cidrs}, netip.MustParseAddr(tc.client))
		if (err == nil) != tc.ok {
			t.Errorf("cidrs %v from %s: %v, want ok=%v", tc.cidrs, tc.client, err, tc.ok)
		}
	}
	if err := checkCIDRs(&Token{CIDRs: []string{"192.168.0.0/16"}}, netip.MustParseAddr("10.0.0.5")); err.Error() != "token not valid from 10.0.0.5 (cidr 192.168.0.0/16)" {
		t.Errorf("message: %v", err)
	}
}

func TestTokenTTL(t *testing.T) {
	s := &Service{defaultTTL: DefaultTokenTTL, maxTTL: DefaultMaxTokenTTL}
	for _, tc := range []struct {
		ask      time.Duration
		readOnly bool
		want     time.Duration
		err      bool
	}{
		{0, false, 30 * 24 * time.Hour, false},
		{0, true, 0, false},
		{7 * 24 * time.Hour, false, 7 * 24 * time.Hour, false},
		{365 * 24 * time.Hour, true, 0, true},
	} {
		got, err := s.TokenTTL(tc.ask, tc.readOnly)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("TokenTTL(%v, %v) = %v, %v", tc.ask, tc.readOnly, got, err)
		}
	}
}

// TestOneUseTokenConcurrent: of concurrent writes with a one-use token,
// exactly one is let through.
func TestOneUseTokenConcurrent(t *testing.T) {
	svc, err := New(Options{UsersFile: filepath.Join(t.TempDir(), "u"), TokensFile: filepath.Join(t.TempDir(), "t.json")})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := svc.Tokens.Create(NewToken{User: "ci", MaxUses: 1, Automation: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate("Bearer "+secret, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed, used := 0, 0
	for range 10 {
		wg.Go(func() {
			err := svc.UseForWrite(p, "publish", "x")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				passed++
			case errors.Is(err, ErrTokenUsed) && errors.Is(err, ErrForbidden):
				used++
			default:
				t.Errorf("use: %v", err)
			}
		})
	}
	wg.Wait()
	if passed != 1 || used != 9 {
		t.Errorf("%d uses passed, %d refused as used; want 1 and 9", passed, used)
	}
}

// TestTOTP checks the codes against RFC 6238's SHA-1 vectors (the last 6
// of their 8 digits), and that a code is good once.
func TestTOTP(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {20000000000, "353130"}} {
		if got := totp(key, tc.unix/totpStep); got != tc.want {
			t.Errorf("totp at %d = %s, want %s", tc.unix, got, tc.want)
		}
	}
	f := OpenTwoFactor(filepath.Join(t.TempDir(), "users-2fa.json"))
	uri, codes, err := f.Enable("alice", "npmgate")
	if err != nil || len(codes) != recoveryCodes {
		t.Fatal(uri, codes, err)
	}
	alice, _ := f.get("alice")
	now := time.Unix(1700000000, 0)
	code, _ := TOTPCode(alice.Secret, now)
	for i, tc := range []struct {
		code string
		ok   bool
	}{{code, true}, {code, false}, {"000000", false}, {codes[0], true}, {codes[0], false}, {codes[1], true}} {
		ok, enrolled, err := f.verify("alice", tc.code, now)
		if ok != tc.ok || !enrolled || err != nil {
			t.Errorf("attempt %d: ok %v enrolled %v err %v, want ok %v", i, ok, enrolled, err, tc.ok)
		}
	}
	if _, enrolled, _ := f.verify("bob", "123456", now); enrolled {
		t.Errorf("bob is enrolled")
	}
}
