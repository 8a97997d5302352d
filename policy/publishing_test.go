package policy

import (
	"errors"
	"testing"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/trustpub"
)

// TestTrustedPublisherErrors: publishing.trusted is checked at load, each
// error at its entry's line.
func TestTrustedPublisherErrors(t *testing.T) {
	const head = "feeds:\n  f: {}\npublishing:\n  trusted:\n    - packages: [\"@a/*\"]\n      repository: acme/app\n      workflow: release.yml\n"
	tests := []struct {
		name, doc string
		line      int
		err       string
	}{
		{"neither form", head + "    - packages: [x]\n", 8, "f.yaml:8: publishing.trusted[1]: set repository and workflow (GitHub Actions) or project_path and ci_config_path (GitLab CI)"},
		{"both forms", head + "    - packages: [x]\n      repository: a/b\n      workflow: w.yml\n      project_path: a/b\n", 8, "f.yaml:8: publishing.trusted[1]: set repository and workflow (GitHub Actions) or project_path and ci_config_path (GitLab CI)"},
		{"unknown feed", head + "    - packages: [x]\n      feed: nope\n      repository: a/b\n      workflow: w.yml\n", 9, "f.yaml:9: publishing.trusted[1].feed: no feed \"nope\""},
		{"no packages", head + "    - repository: a/b\n      workflow: w.yml\n", 8, "f.yaml:8: publishing.trusted[1]: packages: name at least one package or prefix (\"@acme/*\")"},
		{"every package", head + "    - packages: [\"*\"]\n      repository: a/b\n      workflow: w.yml\n", 8, "f.yaml:8: publishing.trusted[1]: packages: \"*\" is not a package name or a prefix ending in *"},
		{"no workflow", head + "    - packages: [x]\n      repository: a/b\n", 8, "f.yaml:8: publishing.trusted[1]: workflow: \"\" is not a workflow file name (GitHub: release.yml) or a CI configuration path (GitLab: .gitlab-ci.yml)"},
		{"workflow path", head + "    - packages: [x]\n      repository: a/b\n      workflow: .github/workflows/r.yml\n", 8, "f.yaml:8: publishing.trusted[1]: workflow: \".github/workflows/r.yml\" is not a workflow file name (GitHub: release.yml) or a CI configuration path (GitLab: .gitlab-ci.yml)"},
		{"repository", head + "    - packages: [x]\n      repository: app\n      workflow: r.yml\n", 8, "f.yaml:8: publishing.trusted[1]: repository: \"app\" is not owner/name (GitHub) or a project path (GitLab)"},
		{"user", head + "    - packages: [x]\n      repository: a/b\n      workflow: r.yml\n      user: \"ci bot\"\n", 8, "f.yaml:8: publishing.trusted[1]: user: user name \"ci bot\": use letters, digits, '-', '_' and '.'"},
		{"issuer", head + "    - packages: [x]\n      issuer: gitlab.com\n      project_path: a/b\n      ci_config_path: .gitlab-ci.yml\n", 8, "f.yaml:8: publishing.trusted[1]: issuer: \"gitlab.com\" is not an http(s) URL (GitHub's is https://token.actions.githubusercontent.com)"},
		{"issuers entry", "feeds:\n  f: {}\npublishing:\n  issuers:\n    - issuer: https://x\n", 4, "f.yaml:4: publishing.issuers: each entry has issuer and jwks_file"},
		{"unknown key", head + "      workflow_ref: x\n", 8, "f.yaml:8: field workflow_ref not found in TrustedPublisher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.doc), "f.yaml")
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not *config.Error", err, err)
			}
			if ce.Line != tt.line || err.Error() != tt.err {
				t.Errorf("%q:\n got line %d %q\nwant line %d %q", tt.doc, ce.Line, err, tt.line, tt.err)
			}
		})
	}
}

// TestTrustedPublisherDefaults: the issuer and provider each form gets.
func TestTrustedPublisherDefaults(t *testing.T) {
	doc := "feeds:\n  f: {}\npublishing:\n  trusted:\n    - packages: [\"@a/*\"]\n      repository: acme/app\n      workflow: release.yml\n" +
		"    - packages: [b]\n      feed: f\n      project_path: g/sub/p\n      ci_config_path: ci/release.yml\n      ref: main\n      user: ci-bot\n"
	_, r, err := Parse([]byte(doc), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []trustpub.Publisher{
		{Packages: []string{"@a/*"}, Issuer: trustpub.GitHubIssuer, Provider: trustpub.GitHub, Repository: "acme/app", Workflow: "release.yml"},
		{Packages: []string{"b"}, Feed: "f", Issuer: "https://gitlab.com", Provider: trustpub.GitLab, Repository: "g/sub/p", Workflow: "ci/release.yml", Ref: "main", User: "ci-bot"},
	}
	if len(r.Trusted) != 2 {
		t.Fatalf("%d publishers", len(r.Trusted))
	}
	for i, p := range r.Trusted {
		w := want[i]
		if p.Issuer != w.Issuer || p.Provider != w.Provider || p.Repository != w.Repository || p.Workflow != w.Workflow ||
			p.Feed != w.Feed || p.Ref != w.Ref || p.User != w.User || len(p.Packages) != 1 || p.Packages[0] != w.Packages[0] {
			t.Errorf("publisher %d: %+v, want %+v", i, p, w)
		}
	}
	if u := r.Trusted[0].Principal(); u != "oidc-github-acme.app" {
		t.Errorf("default user %q", u)
	}
}
