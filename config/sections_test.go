package config

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestSectionErrors pins each section's errors, word for word and with
// their line, so that moving a check between files changes none of them.
func TestSectionErrors(t *testing.T) {
	const feed = "feeds:\n  f: {}\n"
	const db = "database:\n  url: postgres://db/npmgate\n"
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		section, doc string
		line         int
		msg          string
	}{
		{"server", "public_url: ftp://x\n" + feed, 1, `public_url: "ftp://x": scheme must be http or https`},
		{"server", "trusted_proxies: [10.0.0.0/8, nowhere]\n" + feed, 1, `trusted_proxies: "nowhere" is not an address or CIDR prefix`},
		{"metrics", "metrics:\n  path: /npm/metrics\n" + feed, 2, "metrics.path: an absolute path outside /npm/"},
		{"metrics", "metrics:\n  listen: nowhere\n" + feed, 2, `metrics.listen: "nowhere" is not host:port`},
		{"tls", "tls:\n  cert: a.pem\n" + feed, 1, "tls: give both cert and key"},
		{"tls", "tls:\n  cert: " + missing + "\n  key: " + missing + "\n" + feed, 1, "tls: stat " + missing + ": no such file or directory"},
		{"database", db + "  max_conns: 1\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\n" + feed, 3, "database.max_conns: at least 2 (one listens for changes)"},
		{"publish", "publish:\n  large_bodies: -1\n" + feed, 2, "publish.large_bodies: at least 1"},
		{"cache", "cache:\n  memory: 1KiB\n" + feed, 2, "cache.memory: at least 1MiB"},
		{"cache", "cache:\n  miss_limit:\n    total_burst: -3\n" + feed, 3, "cache.miss_limit.total_burst: a positive number"},
		{"log", "log:\n  format: xml\n" + feed, 2, `log.format: "xml" is not text or json`},
		{"connectors", "connectors:\n  a:\n" + feed, 2, `connector "a" is empty`},
		{"connectors", "connectors:\n  A:\n    url: http://x\n" + feed, 2, `connector name "A": use lower-case letters, digits, '-', '_' and '.'`},
		{"connectors", "connectors:\n  a:\n    url: http://x\n    retries: 11\n" + feed, 4, "connectors.a.retries: between 0 and 10"},
		{"connectors", "connectors:\n  a:\n    url: http://x\n    ca_file: " + missing + "\n" + feed, 4, "connectors.a.ca_file: stat " + missing + ": no such file or directory"},
		{"auth", "auth:\n  groups:\n    $ops: [alice]\n" + feed, 3, `auth.groups: "$ops" is not a group name`},
		{"feeds", "feeds:\n  f:\n    audit: https://u:pw@audit.example\n", 3, `feeds.f.audit: "https://u:xxxxx@audit.example": user info, query and fragment are not allowed (put a credential in the connector's token)`},
		{"feeds", "feeds:\n  f:\n    audit: elsewhere\n", 3, `feeds.f.audit: "elsewhere" is not a connector, an http(s) URL or off`},
		{"feeds", "feeds:\n  f:\n    owned_scopes: [acme]\n", 3, `feeds.f.owned_scopes[0]: "acme" is not a scope like @acme`},
		{"feeds", "feeds:\n  f:\n    merge: [\"a*b\"]\n", 3, `feeds.f.merge[0]: "a*b": use a name, @scope/* or prefix*`},
		{"feeds", "feeds:\n  f:\n    owned_names: [Acme]\n", 3, `feeds.f.owned_names[0]: "Acme": use a package name or a prefix ending in * (acme-tool, acme-*)`},
		{"feeds", "connectors:\n  a:\n    url: http://x\nfeeds:\n  f:\n    connectors: [a, a]\n", 6, `feeds.f.connectors: "a" is listed twice`},
		{"feeds", "feeds:\n  '-': {}\n", 2, `feed name "-": use lower-case letters, digits, '-', '_' and '.'`},
		// With several errors the first section in the fixed order wins.
		{"order", "log:\n  level: loud\nlisten: nowhere\n" + feed, 3, `listen: "nowhere" is not host:port`},
		{"order", "connectors:\n  a:\n    url: http://x\n    retries: -1\nmetrics:\n  path: x\n" + feed, 6, "metrics.path: an absolute path outside /npm/"},
		{"order", "auth:\n  groups:\n    $ops: []\nlisten: 127.0.0.1:1\n", 1, "feeds: at least one feed is needed"},
		{"order", "feeds:\n  f:\n    merge: [\"a*b\"]\n    access:\n      admin: [$nobody]\n", 3, `feeds.f.merge[0]: "a*b": use a name, @scope/* or prefix*`},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "f.yaml")
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%q: error %T %v is not *Error", tt.doc, err, err)
			}
			if ce.Line != tt.line || len(ce.Msg) < len(tt.msg) || ce.Msg[:len(tt.msg)] != tt.msg {
				t.Errorf("%q:\n got line %d %q\nwant line %d %q", tt.doc, ce.Line, ce.Msg, tt.line, tt.msg)
			}
		})
	}
}

// TestSectionDefaults pins the value each empty key takes.
func TestSectionDefaults(t *testing.T) {
	c, err := Parse([]byte(db2+"storage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\n    prefix: /a/b/\nconnectors:\n  a:\n    url: http://x/\nfeeds:\n  f:\n    connectors: [a]\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cn, f := c.Connectors["a"], c.Feeds["f"]
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:4873"},
		{"data", c.Data, "./npmgate-data"},
		{"trusted_prefixes", len(c.TrustedPrefixes), 2},
		{"metrics.enabled", *c.Metrics.Enabled, true},
		{"metrics.path", c.Metrics.Path, "/metrics"},
		{"metrics.access", c.Metrics.Access[0], "$anonymous"},
		{"database.max_conns", c.Database.MaxConns, 10},
		{"storage.s3.region", c.Storage.S3.Region, "us-east-1"},
		{"storage.s3.prefix", c.Storage.S3.Prefix, "a/b"},
		{"publish.max_size", c.Publish.MaxSize, Size(64 << 20)},
		{"publish.large_bodies", c.Publish.LargeBodies, 4},
		{"cache.memory", c.Cache.Memory, Size(64 << 20)},
		{"cache.not_found_ttl", c.Cache.NotFoundTTL.D().String(), "30s"},
		{"cache.stale_retry", c.Cache.StaleRetry.D().String(), "10s"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"log.access", *c.Log.Access, true},
		{"connectors.a.url", cn.URL, "http://x"},
		{"connectors.a.timeout", cn.Timeout.D().String(), "30s"},
		{"connectors.a.tarball_timeout", cn.TarballTimeout.D().String(), "10m0s"},
		{"connectors.a.retries", *cn.Retries, 2},
		{"feeds.f.access.read", f.Access.Read[0], "$anonymous"},
		{"feeds.f.access.publish", f.Access.Publish[0], "$authenticated"},
		{"default feed", c.DefaultFeed, "f"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

const db2 = "database:\n  url: postgres://db/npmgate\n"
