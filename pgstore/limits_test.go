package pgstore

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/npmgate/npmgate/auth"
)

// TestTokenLimitsInTheDatabase: a token's limits survive the database,
// and of concurrent writes with a one-use token through two replicas
// exactly one is let through; the last use is stored.
func TestTokenLimitsInTheDatabase(t *testing.T) {
	url := migrated(t)
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	a, b := service(t, open(t, url), c), service(t, open(t, url), c)
	secret, _, err := a.Tokens.Create(auth.NewToken{User: "ci", Packages: []string{"@acme/*"}, CIDRs: []string{"192.0.2.0/24"},
		MaxUses: 1, Automation: true}, c.t)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := b.Tokens.Lookup(secret, c.t)
	if err != nil || !slices.Equal(tk.Packages, []string{"@acme/*"}) || !slices.Equal(tk.CIDRs, []string{"192.0.2.0/24"}) ||
		tk.MaxUses != 1 || !tk.Automation || !tk.LastUsed.IsZero() {
		t.Fatalf("Lookup = %+v, %v", tk, err)
	}
	p, err := a.Authenticate("Bearer "+secret, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.MayWrite("publish", "left-pad"); !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("left-pad with a token for @acme/*: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for i := range 8 {
		s := []*auth.Service{a, b}[i%2]
		wg.Go(func() {
			err := s.UseForWrite(p, "publish", "@acme/x")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				passed++
			} else if !errors.Is(err, auth.ErrTokenUsed) {
				t.Errorf("use: %v", err)
			}
		})
	}
	wg.Wait()
	if passed != 1 {
		t.Errorf("%d of 8 concurrent uses of a one-use token passed", passed)
	}
	if tk, _ := b.Tokens.Lookup(secret, c.t); tk == nil || tk.Uses != 1 || tk.LastUsed.IsZero() {
		t.Errorf("after the use: %+v", tk)
	}
}
