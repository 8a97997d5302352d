package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPackagesGetAndUpdate(t *testing.T) {
	ctx := testCtx(t)
	p := open(t, migrated(t)).Packages()
	if doc, err := p.Get(ctx, "main", "left-pad"); doc != nil || err != nil {
		t.Fatalf("Get of a missing package = %q, %v", doc, err)
	}
	steps := []struct {
		name    string
		wantOld string // "" for none
		set     []byte
		err     error
		stored  string // "" for none
	}{
		{"create", "", []byte(`{"v":1}`), nil, `{"v":1}`},
		{"modify", `{"v":1}`, []byte(`{"v":2}`), nil, `{"v":2}`},
		{"failing change stores nothing", `{"v":2}`, []byte(`{"v":3}`), errBoom, `{"v":2}`},
		{"bytes kept as given", `{"v":2}`, []byte("{ \"v\" : 4 ,\n\"z\":\"\x00\"}"), nil, "{ \"v\" : 4 ,\n\"z\":\"\x00\"}"},
		{"nil deletes", "{ \"v\" : 4 ,\n\"z\":\"\x00\"}", nil, nil, ""},
	}
	for _, s := range steps {
		err := p.Update(ctx, "main", "left-pad", func(old []byte) ([]byte, error) {
			if string(old) != s.wantOld || (s.wantOld == "" && old != nil) {
				t.Errorf("%s: change saw %q, want %q", s.name, old, s.wantOld)
			}
			return s.set, s.err
		})
		if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
			t.Fatalf("%s: Update = %v, want %v", s.name, err, s.err)
		}
		doc, err := p.Get(ctx, "main", "left-pad")
		if err != nil || string(doc) != s.stored || (s.stored == "" && doc != nil) {
			t.Fatalf("%s: stored %q, %v; want %q", s.name, doc, err, s.stored)
		}
	}
	// A failing change on a new package leaves no row behind.
	if err := p.Update(ctx, "main", "never", func(old []byte) ([]byte, error) { return nil, fmt.Errorf("wrapped: %w", errBoom) }); !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v", err)
	}
	n := 0
	p.Each(ctx, "", func(feed, name string, doc []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d documents after failed and deleting updates, want 0", n)
	}
}

var errBoom = errors.New("boom")

// Two replicas (two pools) publishing versions of one package at once:
// each update appends to the document, and none may be lost.
func TestConcurrentUpdatesFromTwoReplicas(t *testing.T) {
	ctx := testCtx(t)
	url := migrated(t)
	replicas := []*Packages{open(t, url).Packages(), open(t, url).Packages()}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- replicas[i%2].Update(ctx, "main", "pkg", func(old []byte) ([]byte, error) {
				var versions []string
				if old != nil {
					if err := json.Unmarshal(old, &versions); err != nil {
						return nil, err
					}
				}
				time.Sleep(time.Millisecond) // widen the window for a lost update
				return json.Marshal(append(versions, fmt.Sprintf("1.0.%d", i)))
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	doc, err := replicas[0].Get(ctx, "main", "pkg")
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	json.Unmarshal(doc, &versions)
	slices.Sort(versions)
	if len(slices.Compact(versions)) != n {
		t.Fatalf("%d versions landed, want %d: %v", len(versions), n, versions)
	}
}

func TestPackagesEach(t *testing.T) {
	ctx := testCtx(t)
	p := open(t, migrated(t)).Packages()
	put := func(feed, name string) {
		if err := p.Update(ctx, feed, name, func([]byte) ([]byte, error) { return []byte(feed + "/" + name), nil }); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	// More than a page, in no particular order.
	for i := 150; i > 0; i-- {
		put("b", fmt.Sprintf("pkg%03d", i))
	}
	put("a", "zeta")
	put("a", "@scope/alpha")
	put("a", "Alpha")
	put("c", "x")
	all = append(all, "a/@scope/alpha", "a/Alpha", "a/zeta")
	for i := 1; i <= 150; i++ {
		all = append(all, fmt.Sprintf("b/pkg%03d", i))
	}
	all = append(all, "c/x")
	tests := []struct {
		feed string
		want []string
	}{
		{"", all},
		{"a", all[:3]},
		{"b", all[3:153]},
		{"c", all[153:]},
		{"none", nil},
	}
	for _, tt := range tests {
		var got []string
		err := p.Each(ctx, tt.feed, func(feed, name string, doc []byte) error {
			if string(doc) != feed+"/"+name {
				t.Errorf("document of %s/%s is %q", feed, name, doc)
			}
			got = append(got, feed+"/"+name)
			return nil
		})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Each(%q) = %v, %v; want %v", tt.feed, got, err, tt.want)
		}
	}
	calls := 0
	err := p.Each(ctx, "", func(string, string, []byte) error {
		calls++
		if calls == 3 {
			return errBoom
		}
		return nil
	})
	if !errors.Is(err, errBoom) || calls != 3 {
		t.Errorf("an error from fn: Each = %v after %d calls", err, calls)
	}
}

func TestWatchHearsOtherReplicas(t *testing.T) {
	ctx := testCtx(t)
	url := migrated(t)
	here, there := open(t, url).Packages(), open(t, url).Packages()
	type change struct{ feed, name string }
	got := make(chan change, 10)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- here.Watch(wctx, func(feed, name string) { got <- change{feed, name} }) }()
	waitListening(t, here, "LISTEN")

	if err := there.Update(ctx, "team", "@scope/pkg", func([]byte) ([]byte, error) { return []byte("{}"), nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c != (change{"team", "@scope/pkg"}) {
			t.Errorf("notified of %+v", c)
		}
	case <-time.After(time.Second):
		t.Fatal("no notification within a second")
	}
	// A failed update tells nobody.
	there.Update(ctx, "team", "other", func([]byte) ([]byte, error) { return nil, errBoom })
	select {
	case c := <-got:
		t.Errorf("notified of a rolled back update: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}

	// A lost connection: Watch reconnects and says anything may have changed.
	killListeners(t, there)
	select {
	case c := <-got:
		if c != (change{}) {
			t.Errorf("after reconnecting: %+v, want the empty change", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect within 5s")
	}
	waitListening(t, here, "LISTEN")
	there.Update(ctx, "main", "after", func([]byte) ([]byte, error) { return []byte("{}"), nil })
	select {
	case c := <-got:
		if c != (change{"main", "after"}) {
			t.Errorf("after reconnecting, notified of %+v", c)
		}
	case <-time.After(time.Second):
		t.Fatal("no notification after reconnecting")
	}

	stop()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Watch returned nil after ctx ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return when ctx ended")
	}
}
