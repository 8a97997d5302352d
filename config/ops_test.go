package config

import (
	"slices"
	"strings"
	"testing"
)

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

func TestMetricsAccessConfig(t *testing.T) {
	t.Setenv("NPMGATE_TEST_METRICS_TOKEN", "0123456789abcdef0123")
	const feeds = "connectors: {up: {url: 'https://registry.npmjs.org'}}\nfeeds: {npm: {default: true, connectors: [up]}}\n"
	tests := []struct {
		yaml       string
		access     []string
		token, err string
	}{
		{"", []string{"$anonymous"}, "", ""},
		{"metrics: {token: '${NPMGATE_TEST_METRICS_TOKEN}'}\n", nil, "0123456789abcdef0123", ""},
		{"metrics: {access: [ops, $authenticated]}\n", []string{"ops", "$authenticated"}, "", ""},
		{"metrics: {token: short}\n", nil, "", "metrics.token: at least 16"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.yaml+feeds), "test")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want an error about %s", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if !slices.Equal(c.Metrics.Access, tt.access) || c.Metrics.Token != tt.token {
			t.Errorf("%q: access %q token %q, want %q %q", tt.yaml, c.Metrics.Access, c.Metrics.Token, tt.access, tt.token)
		}
	}
}
