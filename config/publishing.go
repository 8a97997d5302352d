package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Publishing is trusted publishing: CI jobs (GitHub Actions, GitLab CI)
// that npm publish with no token, exchanging the job's OIDC ID token for
// a token that can publish one package once, within minutes.
type Publishing struct {
	// Audience lists the ID token audiences that name this registry.
	// Default: "npm:HOST" for the host (with or without its port) of
	// the registry URL the client used, as npm asks its CI for.
	Audience []string `yaml:"audience"`
	// Issuers give an issuer's keys as a JWKS file, for sites that
	// cannot reach it; the keys of an issuer not listed are fetched
	// from its discovery document.
	Issuers []Issuer `yaml:"issuers"`
	// Trusted are the trusted publishers, tried in order.
	Trusted []TrustedPublisher `yaml:"trusted"`
}

// Issuer is an OIDC issuer's keys from a file.
type Issuer struct {
	Issuer   string `yaml:"issuer"`
	JWKSFile string `yaml:"jwks_file"`
}

// TrustedPublisher is a CI identity allowed to publish some packages.
// It is GitHub's (repository and workflow) or GitLab's (project_path and
// ci_config_path).
type TrustedPublisher struct {
	// Packages are names; an entry ending in * is a prefix ("@acme/*").
	Packages []string `yaml:"packages"`
	// Feed is the feed to publish to (default: the default feed).
	Feed string `yaml:"feed"`
	// Issuer defaults to GitHub Actions' for a repository and to
	// https://gitlab.com for a project_path.
	Issuer string `yaml:"issuer"`
	// GitHub: owner/repo and the workflow file name (release.yml).
	Repository string `yaml:"repository"`
	Workflow   string `yaml:"workflow"`
	// GitLab: the project path (group/project) and the path of the CI
	// configuration file (.gitlab-ci.yml).
	ProjectPath  string `yaml:"project_path"`
	CIConfigPath string `yaml:"ci_config_path"`
	// Environment and Ref, when set, must be the job's (GitHub's ref is
	// refs/heads/main, GitLab's main).
	Environment string `yaml:"environment"`
	Ref         string `yaml:"ref"`
	// User is who the exchanged token publishes as: a user who may
	// publish to the feed and maintains the packages. Default:
	// oidc-github-OWNER.REPO (oidc-gitlab-GROUP.PROJECT).
	User string `yaml:"user"`
}

// Default issuers.
const (
	GitHubIssuer = "https://token.actions.githubusercontent.com"
	GitLabIssuer = "https://gitlab.com"
)

// validatePublishing checks the section's shape; policy compiles the
// publishers (names, patterns, users).
func (c *Config) validatePublishing(at atFunc) error {
	p := &c.Publishing
	for _, a := range p.Audience {
		if a == "" || strings.ContainsAny(a, " \t") {
			return at(fmt.Sprintf("publishing.audience: %q is not an audience (npm:registry.example.com)", a), "publishing", "audience")
		}
	}
	for _, is := range p.Issuers {
		if is.Issuer == "" || is.JWKSFile == "" {
			return at("publishing.issuers: each entry has issuer and jwks_file", "publishing", "issuers")
		}
	}
	for i := range p.Trusted {
		t := &p.Trusted[i]
		github, gitlab := t.Repository != "" || t.Workflow != "", t.ProjectPath != "" || t.CIConfigPath != ""
		switch {
		case github == gitlab:
			return at(fmt.Sprintf("publishing.trusted[%d]: set repository and workflow (GitHub Actions) or project_path and ci_config_path (GitLab CI)", i), "publishing", "trusted", strconv.Itoa(i))
		case github && t.Issuer == "":
			t.Issuer = GitHubIssuer
		case gitlab && t.Issuer == "":
			t.Issuer = GitLabIssuer
		}
		if t.Feed != "" && c.Feeds[t.Feed] == nil {
			return at(fmt.Sprintf("publishing.trusted[%d].feed: no feed %q", i, t.Feed), "publishing", "trusted", strconv.Itoa(i), "feed")
		}
	}
	return nil
}
