// Package trustpub is trusted publishing as npm's CLI speaks it: a CI job
// (GitHub Actions, GitLab CI) sends an OIDC ID token, and if the token is
// genuine, meant for this registry, fresh, unused, and its claims match a
// trusted publisher configured for the package, the edge hands back a
// short-lived token that can publish that one package. This package
// verifies the token (Verifier) and matches its claims (Match); it knows
// no HTTP framework and no other package of npmgate.
package trustpub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// GitHubIssuer is the issuer of GitHub Actions' ID tokens.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Provider says which CI's claims a publisher is matched on.
type Provider string

// Providers.
const (
	GitHub Provider = "github"
	GitLab Provider = "gitlab"
)

// Publisher is one trusted publisher: the packages it may publish and the
// identity a CI job must prove. Fields left empty are not checked, except
// those Validate requires.
type Publisher struct {
	// Packages are package names; an entry ending in * is a prefix
	// ("@acme/*").
	Packages []string
	// Feed is the feed the token is good for ("": the default feed).
	Feed   string
	Issuer string
	// Provider is GitHub or GitLab: which claims name the repository
	// and the workflow.
	Provider Provider
	// Repository is GitHub's owner/repo, or GitLab's project path.
	Repository string
	// Workflow is GitHub's workflow file name (release.yml), or GitLab's
	// CI configuration path (.gitlab-ci.yml).
	Workflow string
	// Environment and Ref, when set, must equal the claims of the same
	// name (GitHub's ref is refs/heads/main, GitLab's main).
	Environment string
	Ref         string
	// User is the principal the token acts as; "" derives one from the
	// repository (DefaultUser).
	User string
}

// Validate checks a publisher as configured: the error names the field.
func (p *Publisher) Validate() error {
	if len(p.Packages) == 0 {
		return errors.New("packages: name at least one package or prefix (\"@acme/*\")")
	}
	for _, n := range p.Packages {
		if n == "" || n == "*" || strings.ContainsAny(n, " \t") {
			return fmt.Errorf("packages: %q is not a package name or a prefix ending in *", n)
		}
	}
	if !strings.HasPrefix(p.Issuer, "https://") && !strings.HasPrefix(p.Issuer, "http://") {
		return fmt.Errorf("issuer: %q is not an http(s) URL (GitHub's is %s)", p.Issuer, GitHubIssuer)
	}
	switch p.Provider {
	case GitHub, GitLab:
	default:
		return fmt.Errorf("provider %q: use github or gitlab", p.Provider)
	}
	if p.Repository == "" || !strings.Contains(p.Repository, "/") {
		return fmt.Errorf("repository: %q is not owner/name (GitHub) or a project path (GitLab)", p.Repository)
	}
	if p.Workflow == "" || strings.Contains(p.Workflow, "@") || (p.Provider == GitHub && strings.Contains(p.Workflow, "/")) {
		return fmt.Errorf("workflow: %q is not a workflow file name (GitHub: release.yml) or a CI configuration path (GitLab: .gitlab-ci.yml)", p.Workflow)
	}
	return nil
}

// Covers reports whether the publisher may publish name.
func (p *Publisher) Covers(name string) bool {
	for _, m := range p.Packages {
		if prefix, ok := strings.CutSuffix(m, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if m == name {
			return true
		}
	}
	return false
}

// Principal is the user the token acts as.
func (p *Publisher) Principal() string {
	if p.User != "" {
		return p.User
	}
	return DefaultUser(p.Provider, p.Repository)
}

// DefaultUser is the principal name of a trusted publisher with no user
// of its own: "oidc-github-acme.app" for acme/app. User names have 1 to
// 64 letters, digits, '-', '_' and '.': other characters become '_', and
// a longer name ends in a hash of the repository instead.
func DefaultUser(prov Provider, repo string) string {
	b := []byte(strings.ReplaceAll(repo, "/", "."))
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	name := "oidc-" + string(prov) + "-" + string(b)
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(repo))
		name = name[:64-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

// Identity is what a verified ID token says about the job that holds it.
type Identity struct {
	Provider Provider
	Issuer   string
	Subject  string
	// ID is the token's jti, or a hash of the token when it has none.
	ID      string
	Expires time.Time
	// Repository: GitHub's repository, GitLab's project_path.
	Repository string
	// Workflow: GitHub's workflow file (from workflow_ref), GitLab's CI
	// configuration path (from ci_config_ref_uri).
	Workflow    string
	Environment string
	Ref         string
	// workflowRepo is the repository workflow_ref names (GitHub), or the
	// project ci_config_ref_uri names (GitLab): it must be Repository.
	workflowRepo string
}

// Errors a refused exchange wraps, for the edge's statuses.
var (
	// ErrInvalidToken: the ID token is malformed, badly signed, from an
	// issuer no publisher trusts, or outside its lifetime (401).
	ErrInvalidToken = errors.New("invalid ID token")
	// ErrReplayed: the ID token was exchanged already (401).
	ErrReplayed = errors.New("ID token already used")
	// ErrUntrusted: a genuine token whose claims no trusted publisher
	// of the package matches (403).
	ErrUntrusted = errors.New("no trusted publisher matches")
	// ErrUnavailable: the issuer's keys could not be fetched, or too many
	// tokens are remembered against replay (503).
	ErrUnavailable = errors.New("trusted publishing unavailable")
)

// Match finds the first publisher of pubs that covers name and whose
// identity id proves; feed, when not empty, is the feed the exchange was
// asked on (a publisher's "" feed is the default feed, def). The error
// says what of the caller's own identity did not match, never what is
// configured.
func Match(pubs []Publisher, id *Identity, name, feed, def string) (*Publisher, error) {
	covered := false
	for i := range pubs {
		p := &pubs[i]
		if !p.Covers(name) || (feed != "" && feed != cmp(p.Feed, def)) {
			continue
		}
		covered = true
		if p.matches(id) {
			return p, nil
		}
	}
	if !covered {
		return nil, refuse(ErrUntrusted, "no trusted publisher is configured for %s", name)
	}
	return nil, refuse(ErrUntrusted, "no trusted publisher of %s matches this job (issuer %s, repository %q, workflow %q, environment %q, ref %q)",
		name, id.Issuer, id.Repository, id.Workflow, id.Environment, id.Ref)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *Publisher) matches(id *Identity) bool {
	switch {
	case p.Provider != id.Provider, p.Issuer != id.Issuer, p.Repository != id.Repository, id.workflowRepo != id.Repository,
		p.Workflow != id.Workflow:
		return false
	case p.Environment != "" && p.Environment != id.Environment:
		return false
	case p.Ref != "" && p.Ref != id.Ref:
		return false
	}
	return true
}

// githubWorkflow splits GitHub's workflow_ref,
// "acme/app/.github/workflows/release.yml@refs/heads/main", into its
// repository and workflow file name.
func githubWorkflow(ref string) (repo, file string) {
	at := strings.LastIndexByte(ref, '@')
	if at < 0 {
		return "", ""
	}
	repo, wf, ok := strings.Cut(ref[:at], "/.github/workflows/")
	if !ok || strings.Contains(wf, "/") {
		return "", ""
	}
	return repo, wf
}

// gitlabConfig splits GitLab's ci_config_ref_uri,
// "gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main", into the project
// path (without the host) and the configuration path.
func gitlabConfig(uri, issuer string) (project, file string) {
	at := strings.LastIndexByte(uri, '@')
	if at < 0 {
		return "", ""
	}
	where, file, ok := strings.Cut(uri[:at], "//")
	if !ok || file == "" || path.Clean(file) != file {
		return "", ""
	}
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(issuer, "https://"), "http://"), "/")
	project, ok = strings.CutPrefix(where, host+"/")
	if !ok {
		return "", ""
	}
	return project, file
}

// refusal is an error of kind whose message is msg alone: the kind's
// own words would repeat what msg says.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind, fmt.Sprintf(format, args...)}
}
