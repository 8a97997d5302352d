package config

import (
	"errors"
	"testing"
	"time"
)

// TestCacheRecheck: cache.recheck defaults to a day, "off" and 0 disable
// it, and a value that is not a duration is refused at its line.
func TestCacheRecheck(t *testing.T) {
	const feed = "feeds:\n  f: {}\n"
	for _, tt := range []struct {
		doc  string
		want time.Duration
	}{
		{feed, 24 * time.Hour},
		{"cache:\n  recheck: off\n" + feed, 0},
		{"cache:\n  recheck: 0s\n" + feed, 0},
		{"cache:\n  recheck: 6h\n" + feed, 6 * time.Hour},
	} {
		c, err := Parse([]byte(tt.doc), "f.yaml")
		if err != nil {
			t.Fatalf("%q: %v", tt.doc, err)
		}
		if got := c.Cache.Recheck.D(); got != tt.want {
			t.Errorf("%q: recheck %v, want %v", tt.doc, got, tt.want)
		}
	}
	_, err := Parse([]byte("cache:\n  recheck: daily\n"+feed), "f.yaml")
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Errorf("recheck: daily: %v, want an error at line 2", err)
	}
}
