package config

import "testing"

func TestCacheMinFree(t *testing.T) {
	tests := []struct {
		yaml string
		want Size
	}{
		{"", DefaultMinFree},
		{"cache: {min_free: 0}\n", 0},
		{"cache: {min_free: 2GiB}\n", 2 << 30},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.yaml+"connectors: {up: {url: 'https://registry.npmjs.org'}}\nfeeds: {npm: {default: true, connectors: [up]}}\n"), "test")
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if got := *c.Cache.MinFree; got != tt.want {
			t.Errorf("%q: min_free %d, want %d", tt.yaml, got, tt.want)
		}
	}
	if _, err := Parse([]byte("cache: {min_free: lots}\n"), "test"); err == nil {
		t.Error("min_free: lots accepted")
	}
}
