package pgstore

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
)

// TestSessionTokens: web UI sessions are stored like tokens (kind
// "session", with an expiry), so another replica knows them and sign-out
// on one ends them on all; they are no credential for npm.
func TestSessionTokens(t *testing.T) {
	url := migrated(t)
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	one, other := service(t, open(t, url), c), service(t, open(t, url), c)
	if err := one.Users.Set("alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("127.0.0.1")
	secret, err := one.SignIn("alice", "correct horse", client, time.Hour)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	p, err := other.BySession(secret)
	if err != nil || p.Name != "alice" {
		t.Fatalf("the other replica's BySession = %+v, %v", p, err)
	}
	if _, err := other.Authenticate("Bearer "+secret, client); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("a session as a bearer token = %v", err)
	}
	if _, err := one.SignIn("alice", "wrong horse", client, time.Hour); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("SignIn with a wrong password = %v", err)
	}
	if err := one.SignOut(secret); err != nil {
		t.Fatal(err)
	}
	if _, err := other.BySession(secret); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("the other replica still knows the session after sign-out: %v", err)
	}
}
