package filter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func decodeSpec(t *testing.T, src string) (*Spec, error) {
	t.Helper()
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	err := dec.Decode(&s)
	return &s, err
}

func TestSpecYAML(t *testing.T) {
	src := `
include: ["@types/*", "lodash*", "!lodash.evil"]
exclude: ["event-stream", "@evil/*"]
block: ["lodash@<4.17.21", "@scope/x@>=2.0.0 <2.1.0"]
deny: ["event-stream@3.3.6"]
allow: ["lodash@4.17.20"]
min_release_age: 3d
min_release_age_exempt: ["@types/*"]
deprecated: hide
install_scripts: block
install_scripts_allow: ["esbuild", "@swc/*"]
licenses:
  allow: [MIT, ISC]
  deny: [AGPL-3.0-only]
  unknown: block
`
	s, err := decodeSpec(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(s.MinReleaseAge) != 72*time.Hour || s.Deprecated != "hide" || s.InstallScripts != "block" ||
		len(s.Include) != 3 || s.Licenses == nil || s.Licenses.Unknown != "block" || len(s.Licenses.Allow) != 2 {
		t.Fatalf("decoded %+v", s)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Version("lodash", Facts{Version: "4.17.20", Published: old, License: "MIT"}, now); !d.Allowed {
		t.Errorf("allow-listed version: %+v", d)
	}
	if d := p.Name("lodash.evil"); d.Allowed {
		t.Errorf("negated include: %+v", d)
	}

	// The config file embeds a Spec under `filter:`; a null or missing one
	// is nil.
	var wrap struct {
		Filter *Spec `yaml:"filter"`
	}
	dec := yaml.NewDecoder(strings.NewReader("filter:\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&wrap); err != nil || wrap.Filter != nil {
		t.Fatalf("null filter: %v %+v", err, wrap.Filter)
	}
	if p, err := Compile(wrap.Filter); err != nil || !p.Empty() {
		t.Fatalf("nil filter: %v", err)
	}
}

func TestSpecYAMLErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"blok: [x@1]\n", "field blok not found"},
		{"licenses:\n  allow: [MIT]\n  unknwn: block\n", "field unknwn not found"},
		{"min_release_age: 7days\n", `line 1: "7days" is not a duration`},
		{"\n\nmin_release_age: 72\n", `line 3: "72" is not a duration`},
		{"min_release_age: -1h\n", `line 1: "-1h" is not a duration: negative`},
		{"min_release_age: [1h]\n", "line 1: want a duration such as 72h, 30m or 7d"},
		{"min_release_age: \"\"\n", `line 1: "" is not a duration`},
		{"block: lodash@1\n", "cannot unmarshal"},
	}
	for _, c := range cases {
		_, err := decodeSpec(t, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("decode %q: %v, want an error containing %q", c.src, err, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	good := map[string]time.Duration{
		"72h":    72 * time.Hour,
		"30m":    30 * time.Minute,
		"90s":    90 * time.Second,
		"7d":     7 * 24 * time.Hour,
		"1.5d":   36 * time.Hour,
		"1d12h":  36 * time.Hour,
		"2d30m":  48*time.Hour + 30*time.Minute,
		"0":      0,
		"0d":     0,
		"1h30m":  90 * time.Minute,
		"10080m": 7 * 24 * time.Hour,
	}
	for s, want := range good {
		got, err := parseDuration(s)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "7", "d", "7days", "1d1d", "-1h", "-1d", "1.2.3d", "d7", "7dh", "1d-1h", "99999999999d", "1e3d", "7 d"} {
		if got, err := parseDuration(s); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", s, got)
		}
	}
	strs := map[time.Duration]string{72 * time.Hour: "3d", 90 * time.Minute: "1h30m", 0: "0s", 36 * time.Hour: "36h"}
	for d, want := range strs {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		back, err := parseDuration(want)
		if err != nil || back != d {
			t.Errorf("round trip of %q: %v %v", want, back, err)
		}
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{Duration(7 * 24 * time.Hour)})
	if err != nil || string(out) != "d: 7d\n" {
		t.Errorf("marshal: %q %v", out, err)
	}
}
