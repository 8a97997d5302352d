package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c, err := Parse(Default, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:4873" || c.Data != "./npmgate-data" || c.DefaultFeed != "npm" {
		t.Errorf("default: listen %q data %q feed %q", c.Listen, c.Data, c.DefaultFeed)
	}
	if u := c.Connectors["npmjs"].URL; u != "https://registry.npmjs.org" {
		t.Errorf("default connector URL %q", u)
	}
	if c.Cache.Memory != 64<<20 || c.Cache.MaxAge.D() != 2*time.Minute {
		t.Errorf("cache defaults: %d %s", c.Cache.Memory, c.Cache.MaxAge.D())
	}
}

func TestExampleFileIsValid(t *testing.T) {
	c, err := Load(filepath.Join("..", "npmgate.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Feeds) < 2 || len(c.Connectors) < 2 {
		t.Errorf("the example should show several feeds and connectors")
	}
}

func TestErrorsNameTheLine(t *testing.T) {
	t.Setenv("NPMGATE_TEST_TOKEN", "s3cret")
	tests := []struct {
		name string
		doc  string
		line int
		msg  string
	}{
		{"unknown key", "listen: 127.0.0.1:1\nlisten_addr: x\n", 2, "field listen_addr not found"},
		{"unknown nested key", "cache:\n  memroy: 1MiB\n", 2, "field memroy not found"},
		{"bad size", "cache:\n  memory: lots\n", 2, "not a size"},
		{"bad duration", "cache:\n  max_age: 2 minutes\n", 2, "not a duration"},
		{"bad listen", "listen: nowhere\n", 1, "not host:port"},
		{"bad connector url", "connectors:\n  a:\n    url: ftp://x\nfeeds:\n  f:\n    connectors: [a]\n", 3, "scheme must be http or https"},
		{"unknown connector", "connectors:\n  a:\n    url: http://x\nfeeds:\n  f:\n    connectors: [b]\n", 6, `no connector named "b"`},
		{"two defaults", "feeds:\n  a:\n    default: true\n  b:\n    default: true\n", 1, "only one feed can be the default"},
		{"no default", "feeds:\n  a: {}\n  b: {}\n", 1, "mark one feed as default"},
		{"no feeds", "listen: 127.0.0.1:1\n", 1, "at least one feed"},
		{"bad feed name", "feeds:\n  Bad/Name: {}\n", 2, "feed name"},
		{"missing env", "connectors:\n  a:\n    url: http://x\n    token: ${NPMGATE_TEST_UNSET}\nfeeds:\n  f: {}\n", 4, "NPMGATE_TEST_UNSET is not set"},
		{"bad log level", "log:\n  level: loud\nfeeds:\n  f: {}\n", 2, "log.level"},
		{"not yaml", "feeds: [\n", 0, ""},
		{"database without bucket", "database:\n  url: postgres://db/npmgate\nfeeds:\n  f: {}\n", 1, "set both"},
		{"bucket without database", "storage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\nfeeds:\n  f: {}\n", 1, "set both"},
		{"bad s3 endpoint", "database:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: s3.example.com\n    bucket: npmgate\nfeeds:\n  f: {}\n", 5, "storage.s3.endpoint"},
		{"bad bucket", "database:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: No_Such\nfeeds:\n  f: {}\n", 6, "storage.s3.bucket"},
		{"anyone an admin", "auth:\n  admins: [alice, $authenticated]\nfeeds:\n  f: {}\n", 2, "would let anyone who signs in disable everyone else"},
		{"half the keys", "database:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\n    access_key: k\nfeeds:\n  f: {}\n", 4, "access_key and secret_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "f.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if tt.line > 0 && ce.Line != tt.line {
				t.Errorf("line %d, want %d (%v)", ce.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Errorf("error %q does not start with the file and say %q", err, tt.msg)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("NPMGATE_TEST_TOKEN", "s3cret")
	c, err := Parse([]byte("connectors:\n  a:\n    url: http://x/\n    token: ${NPMGATE_TEST_TOKEN}\nfeeds:\n  f:\n    connectors: [a]\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if c.Connectors["a"].Token != "s3cret" || c.Connectors["a"].URL != "http://x" {
		t.Errorf("token %q url %q", c.Connectors["a"].Token, c.Connectors["a"].URL)
	}
	if c.DefaultFeed != "f" || !c.Feeds["f"].Default {
		t.Error("a single feed is the default")
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]Size{"512MiB": 512 << 20, "2GB": 2e9, "1048576": 1 << 20, "1.5KiB": 1536, "64mib": 64 << 20} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "lots", "-1MiB", "5 parsecs"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestOwnedNamesAndAdmin(t *testing.T) {
	tests := []struct {
		yaml string
		ok   bool
	}{
		{"feeds:\n  f:\n    owned_names: [acme-tool, acme-*, \"@acme/*\", \"@acme/cli-*\"]\n    access:\n      admin: [root, ops]\n", true},
		{"feeds:\n  f:\n    owned_names: [\"*\"]\n", false},
		{"feeds:\n  f:\n    owned_names: [Acme]\n", false},
		{"feeds:\n  f:\n    owned_names: [\"a*b\"]\n", false},
		{"feeds:\n  f:\n    owned_names: [\"\"]\n", false},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml), "test")
		if (err == nil) != tt.ok {
			t.Errorf("%q: %v, want ok=%v", tt.yaml, err, tt.ok)
		}
	}
}

// TestHardeningLimitDefaults: the miss limit and the tarball limit have
// generous defaults, and values given are kept.
func TestHardeningLimitDefaults(t *testing.T) {
	c, err := Parse(Default, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cache.MissLimit; got != (MissLimit{ClientBurst: 300, ClientPerMinute: 60, TotalBurst: 3000, TotalPerMinute: 1200}) {
		t.Errorf("miss_limit defaults: %+v", got)
	}
	if got := c.Connectors["npmjs"].MaxTarballSize; got != 1<<30 {
		t.Errorf("max_tarball_size default: %d", got)
	}
	c, err = Parse([]byte("cache:\n  miss_limit:\n    client_burst: 5\n    total_per_minute: 7\nconnectors:\n  a:\n    url: http://x\n    max_tarball_size: 2MiB\nfeeds:\n  f:\n    connectors: [a]\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Cache.MissLimit; m.ClientBurst != 5 || m.TotalPerMinute != 7 || m.ClientPerMinute != 60 {
		t.Errorf("miss_limit: %+v", m)
	}
	if got := c.Connectors["a"].MaxTarballSize; got != 2<<20 {
		t.Errorf("max_tarball_size: %d", got)
	}
	if _, err := Parse([]byte("cache:\n  miss_limit:\n    client_burst: -1\nfeeds:\n  f: {}\n"), "t"); err == nil || !strings.Contains(err.Error(), "cache.miss_limit.client_burst") {
		t.Errorf("negative client_burst: %v", err)
	}
}

// TestNoTwoFactorFileWithReplicas: with a database, no replica keeps
// second factors of its own (one enrolled on one replica would write
// through another without a code): the database keeps them, and feeds
// may require them.
func TestNoTwoFactorFileWithReplicas(t *testing.T) {
	one, err := Parse([]byte("data: /d\nfeeds:\n  f: {}\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if one.TwoFactorFile() == "" {
		t.Error("one machine keeps no second factors")
	}
	replicas, err := Parse([]byte("data: /d\ndatabase:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\nfeeds:\n  f: {}\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if f := replicas.TwoFactorFile(); f != "" {
		t.Errorf("a replica keeps second factors in %s", f)
	}
	if _, err := Parse([]byte("database:\n  url: postgres://db/npmgate\nstorage:\n  s3:\n    endpoint: http://s3:9000\n    bucket: npmgate\nfeeds:\n  f:\n    require_2fa: true\n"), "f"); err != nil {
		t.Errorf("require_2fa with replicas: %v", err)
	}
}
