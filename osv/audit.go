package osv

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The audit answers, built from the database with nothing sent anywhere:
//
//   - bulk (POST /-/npm/v1/security/advisories/bulk): npm 7 and later,
//     yarn 4 and pnpm 11; {name: [versions]} in, {name: [advisory]} out
//     (read by @npmcli/metavuln-calculator's Advisory: id, url, title,
//     severity, vulnerable_versions, cwe, cvss);
//   - v1 (POST /-/npm/v1/security/audits and …/audits/quick): yarn 1,
//     pnpm 10 and npm's fallback; npm 6's tree in, npm 6's report out
//     (advisories keyed by id with findings, actions whose resolves yarn 1
//     prints, metadata.vulnerabilities that yarn 1 and pnpm count).

// Bounds on an audit request, past what a body limit already bounds: a
// lockfile of the largest monorepos has tens of thousands of entries.
const (
	maxAuditNames    = 100_000
	maxAuditVersions = 1_000 // versions of one name
	maxAuditNodes    = 500_000
	maxAuditDepth    = 256
)

// ErrAuditRequest is a request body an audit answer cannot be built from.
var ErrAuditRequest = errors.New("osv: audit request is not valid")

// NumericID is the number an audit answer gives advisory id for package
// name: npm's registry numbered its advisories, one number per advisory
// and package, and npm, yarn and pnpm key them by that number. It is a
// hash of id and the lowercased name (FNV-1a, 50 bits) with bit 50 set:
// stable across loads and hosts, safe in a JavaScript number (below
// 2^53), and far above the registry's own numbers (about 1.1 million), so
// a merge of local and upstream answers never confuses the two.
func NumericID(id, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(name)))
	return int64(h.Sum64()&(1<<50-1)) | 1<<50
}

// BulkAdvisory is one advisory of a bulk answer.
type BulkAdvisory struct {
	ID                 int64    `json:"id"`
	URL                string   `json:"url"`
	Title              string   `json:"title"`
	Severity           string   `json:"severity"`
	VulnerableVersions string   `json:"vulnerable_versions"`
	CWE                []string `json:"cwe"`
	CVSS               CVSS     `json:"cvss"`
}

// CVSS is an advisory's score as npm's registry gives it; VectorString is
// null when the record has no vector.
type CVSS struct {
	Score        float64 `json:"score"`
	VectorString *string `json:"vectorString"`
}

// severityWord is the level a client prints; a record without one is
// "info", the level npm, yarn and pnpm have below low, so that it is
// shown without failing an --audit-level of low.
func severityWord(s Severity) string {
	if s == SeverityUnknown {
		return "info"
	}
	return s.String()
}

func bulkOf(e *entry) BulkAdvisory {
	a := e.adv
	b := BulkAdvisory{
		ID:                 NumericID(a.ID, e.name),
		URL:                a.URL,
		Title:              a.Title(),
		Severity:           severityWord(a.Severity),
		VulnerableVersions: e.vulnerableRange(),
		CWE:                append([]string{}, a.CWEs...),
		CVSS:               CVSS{Score: a.Score},
	}
	if a.Vector != "" {
		v := a.Vector
		b.CVSS.VectorString = &v
	}
	return b
}

// BulkAudit answers a bulk request: for each name, the advisories that
// affect at least one of its versions; names with none are left out, so
// a clean tree is {}.
func (db *DB) BulkAudit(body []byte) ([]byte, error) {
	var req map[string][]string
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, ErrAuditRequest
	}
	if len(req) > maxAuditNames {
		return nil, ErrAuditRequest
	}
	out := map[string][]BulkAdvisory{}
	for name, versions := range req {
		if len(versions) > maxAuditVersions {
			return nil, ErrAuditRequest
		}
		entries := db.entries(name)
		for i := range entries {
			if affectsAny(&entries[i], versions) {
				out[name] = append(out[name], bulkOf(&entries[i]))
			}
		}
	}
	return marshal(out)
}

func affectsAny(e *entry, versions []string) bool {
	for _, version := range versions {
		if v, ok := parseStrict(version); e.affects(version, v, ok) {
			return true
		}
	}
	return false
}

// auditNode is one node of npm 6's audit tree (what yarn 1 and pnpm 10
// send: a lockfile v1 shape, nested by where a package is installed).
type auditNode struct {
	Version      string                `json:"version"`
	Dev          bool                  `json:"dev"`
	Optional     bool                  `json:"optional"`
	Bundled      bool                  `json:"bundled"`
	Dependencies map[string]*auditNode `json:"dependencies"`
}

// V1Advisory is one advisory of the v1 report, with the fields yarn 1
// and pnpm print (module_name, title, severity, vulnerable_versions,
// patched_versions, url, findings' paths) and those they declare.
type V1Advisory struct {
	Findings           []Finding  `json:"findings"`
	ID                 int64      `json:"id"`
	Created            string     `json:"created"`
	Updated            string     `json:"updated"`
	Deleted            bool       `json:"deleted"`
	Title              string     `json:"title"`
	FoundBy            v1Person   `json:"found_by"`
	ReportedBy         v1Person   `json:"reported_by"`
	ModuleName         string     `json:"module_name"`
	CVEs               []string   `json:"cves"`
	VulnerableVersions string     `json:"vulnerable_versions"`
	PatchedVersions    string     `json:"patched_versions"`
	Overview           string     `json:"overview"`
	Recommendation     string     `json:"recommendation"`
	References         string     `json:"references"`
	Access             string     `json:"access"`
	Severity           string     `json:"severity"`
	CWE                string     `json:"cwe"`
	GitHubAdvisoryID   string     `json:"github_advisory_id"`
	Metadata           v1Metadata `json:"metadata"`
	URL                string     `json:"url"`
}

// v1Person is who found or reported an advisory, which OSV does not
// say; an object with an empty name rather than null, for a client that
// reads found_by.name.
type v1Person struct {
	Name string `json:"name"`
}

type v1Metadata struct {
	ModuleType         string  `json:"module_type"`
	Exploitability     float64 `json:"exploitability"`
	AffectedComponents string  `json:"affected_components"`
}

// Finding is one affected version of the audited tree and where it is.
type Finding struct {
	Version  string   `json:"version"`
	Paths    []string `json:"paths"`
	Dev      bool     `json:"dev"`
	Optional bool     `json:"optional"`
	Bundled  bool     `json:"bundled"`
}

type v1Action struct {
	Action  string      `json:"action"`
	Module  string      `json:"module"`
	IsMajor bool        `json:"isMajor"`
	Resolve []v1Resolve `json:"resolves"`
}

type v1Resolve struct {
	ID       int64  `json:"id"`
	Path     string `json:"path"`
	Dev      bool   `json:"dev"`
	Optional bool   `json:"optional"`
	Bundled  bool   `json:"bundled"`
}

// V1Report is the whole v1 answer.
type V1Report struct {
	Actions    []v1Action             `json:"actions"`
	Advisories map[string]*V1Advisory `json:"advisories"`
	Muted      []any                  `json:"muted"`
	Metadata   V1Summary              `json:"metadata"`
}

// V1Summary counts vulnerable paths by level and the tree's packages.
type V1Summary struct {
	Vulnerabilities      map[string]int `json:"vulnerabilities"`
	Dependencies         int            `json:"dependencies"`
	DevDependencies      int            `json:"devDependencies"`
	OptionalDependencies int            `json:"optionalDependencies"`
	TotalDependencies    int            `json:"totalDependencies"`
}

// V1Audit answers a v1 (full or quick) audit request.
func (db *DB) V1Audit(body []byte) ([]byte, error) {
	var root auditNode
	if err := json.Unmarshal(body, &root); err != nil {
		return nil, ErrAuditRequest
	}
	w := v1Walk{db: db, report: V1Report{
		Actions:    []v1Action{},
		Advisories: map[string]*V1Advisory{},
		Muted:      []any{},
		Metadata: V1Summary{Vulnerabilities: map[string]int{
			"info": 0, "low": 0, "moderate": 0, "high": 0, "critical": 0,
		}},
	}, actions: map[string]int{}}
	if err := w.walk(root.Dependencies, "", 0); err != nil {
		return nil, err
	}
	return marshal(w.report)
}

type v1Walk struct {
	db      *DB
	report  V1Report
	nodes   int
	actions map[string]int // advisory key → index in report.Actions
}

// walk visits the nodes below one node, names in order so that the
// report is the same for the same tree.
func (w *v1Walk) walk(deps map[string]*auditNode, parent string, depth int) error {
	if depth > maxAuditDepth {
		return ErrAuditRequest
	}
	names := make([]string, 0, len(deps))
	for name := range deps {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n := deps[name]
		if n == nil {
			continue
		}
		if w.nodes++; w.nodes > maxAuditNodes {
			return ErrAuditRequest
		}
		w.count(n)
		path := name
		if parent != "" {
			path = parent + ">" + name
		}
		w.visit(name, path, n)
		if err := w.walk(n.Dependencies, path, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (w *v1Walk) count(n *auditNode) {
	m := &w.report.Metadata
	m.TotalDependencies++
	switch {
	case n.Dev:
		m.DevDependencies++
	case n.Optional:
		m.OptionalDependencies++
	default:
		m.Dependencies++
	}
}

// visit records the advisories affecting one installed package.
func (w *v1Walk) visit(name, path string, n *auditNode) {
	entries := w.db.entries(name)
	if len(entries) == 0 || n.Version == "" {
		return
	}
	v, ok := parseStrict(n.Version)
	for i := range entries {
		e := &entries[i]
		if !e.affects(n.Version, v, ok) {
			continue
		}
		// One number per advisory and name: an advisory naming two
		// packages (lodash and lodash-es) is two entries of the report,
		// as npm's registry listed them.
		id := NumericID(e.adv.ID, e.name)
		key := idKey(id)
		adv := w.report.Advisories[key]
		if adv == nil {
			adv = v1Of(e, name, id)
			w.report.Advisories[key] = adv
		}
		addFinding(adv, n, path)
		w.report.Metadata.Vulnerabilities[adv.Severity]++
		w.resolve(key, name, v1Resolve{ID: id, Path: path, Dev: n.Dev, Optional: n.Optional, Bundled: n.Bundled})
	}
}

// idKey is an advisory's key in the v1 report: its number as a string.
func idKey(id int64) string { return strconv.FormatInt(id, 10) }

func addFinding(adv *V1Advisory, n *auditNode, path string) {
	for i := range adv.Findings {
		f := &adv.Findings[i]
		if f.Version == n.Version && f.Dev == n.Dev {
			f.Paths = append(f.Paths, path)
			return
		}
	}
	adv.Findings = append(adv.Findings, Finding{Version: n.Version, Paths: []string{path}, Dev: n.Dev, Optional: n.Optional, Bundled: n.Bundled})
}

// resolve adds a path to the advisory's action: yarn 1 prints the
// advisories through the actions' resolves, one table per path. The
// action is "review": the database knows no fix npmgate could apply.
func (w *v1Walk) resolve(key, module string, r v1Resolve) {
	i, ok := w.actions[key]
	if !ok {
		i = len(w.report.Actions)
		w.actions[key] = i
		w.report.Actions = append(w.report.Actions, v1Action{Action: "review", Module: module})
	}
	w.report.Actions[i].Resolve = append(w.report.Actions[i].Resolve, r)
}

func v1Of(e *entry, name string, id int64) *V1Advisory {
	a := e.adv
	adv := &V1Advisory{
		ID:                 id,
		Created:            timeWord(a.Published),
		Updated:            timeWord(a.Modified),
		Title:              a.Title(),
		ModuleName:         name,
		CVEs:               []string{},
		VulnerableVersions: e.vulnerableRange(),
		PatchedVersions:    e.patchedRange(),
		Overview:           a.Details,
		References:         a.URL,
		Access:             "public",
		Severity:           severityWord(a.Severity),
		CWE:                strings.Join(a.CWEs, ", "),
		URL:                a.URL,
		Metadata:           v1Metadata{Exploitability: a.Score},
	}
	if strings.HasPrefix(a.ID, "GHSA-") {
		adv.GitHubAdvisoryID = a.ID
	}
	for _, alias := range a.Aliases {
		switch {
		case strings.HasPrefix(alias, "CVE-"):
			adv.CVEs = append(adv.CVEs, alias)
		case adv.GitHubAdvisoryID == "" && strings.HasPrefix(alias, "GHSA-"):
			adv.GitHubAdvisoryID = alias
		}
	}
	switch {
	case a.Malicious:
		adv.Recommendation = "Remove this package: " + a.ID + " reports it malicious. Treat any machine that installed it as compromised."
	case adv.PatchedVersions == "<0.0.0":
		adv.Recommendation = "None"
	default:
		adv.Recommendation = "Upgrade to a version in " + adv.PatchedVersions
	}
	return adv
}

// marshal writes v without HTML escapes: a client prints
// vulnerable_versions, and ">=1.0.0" reads better than "\u003e=1.0.0".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func timeWord(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
