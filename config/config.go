// Package config reads npmgate's one YAML configuration file. Unknown keys
// and bad values are errors that name their line; nothing is ignored.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/filter"
)

// Default is the embedded configuration: one feed, served at / and at
// /npm/npm/, reading through one connector to the public npm registry.
//
//go:embed default.yaml
var Default []byte

// Config is the whole file.
type Config struct {
	Listen                string                `yaml:"listen"`
	PublicURL             string                `yaml:"public_url"`
	Data                  string                `yaml:"data"`
	TrustForwardedHeaders bool                  `yaml:"trust_forwarded_headers"`
	TrustedProxies        []string              `yaml:"trusted_proxies"`
	Cache                 Cache                 `yaml:"cache"`
	Log                   Log                   `yaml:"log"`
	Connectors            map[string]*Connector `yaml:"connectors"`
	Feeds                 map[string]*Feed      `yaml:"feeds"`
	Auth                  Auth                  `yaml:"auth"`
	Publish               Publish               `yaml:"publish"`
	Metrics               Metrics               `yaml:"metrics"`
	TLS                   TLS                   `yaml:"tls"`
	// Database and Storage make replicas share their state: both are set
	// or neither (the data directory alone, one machine).
	Database Database `yaml:"database"`
	Storage  Storage  `yaml:"storage"`

	// Parsed forms, filled by Validate.
	TrustedPrefixes []netip.Prefix `yaml:"-"`
	DefaultFeed     string         `yaml:"-"`
}

// Cache sizes the tiers.
type Cache struct {
	// Memory bounds the rendered documents kept in memory, in bytes.
	Memory Size `yaml:"memory"`
	// MaxAge is how long an upstream document is served before it is
	// revalidated upstream.
	MaxAge Duration `yaml:"max_age"`
	// NotFoundTTL is how long an upstream 404 is remembered.
	NotFoundTTL Duration `yaml:"not_found_ttl"`
	// StaleRetry is how long a stale document is served, once upstream
	// failed, before upstream is tried again.
	StaleRetry Duration `yaml:"stale_retry"`
	// MaxSize caps the cached data on disk (tarballs and snapshots, never
	// published packages); 0 means no cap.
	MaxSize Size `yaml:"max_size"`
	// MissLimit bounds upstream lookups of names npmgate does not know
	// that end in "no such package".
	MissLimit MissLimit `yaml:"miss_limit"`
	// MinFree is the free space the data directory's file system must
	// have for /readyz to pass; 0 disables the check. Default
	// DefaultMinFree.
	MinFree *Size `yaml:"min_free"`
}

// MissLimit is a token bucket per client address (IPv6: per /64) and one
// for all clients together. A lookup of a name that is neither in the
// memory tier nor in the snapshots needs a token in both; one that ends
// in a 404 spends them. Without tokens the request is answered 429 with
// no upstream request; known names are always served. Zero values take
// the defaults.
type MissLimit struct {
	// ClientBurst is how many such misses one address may make at once
	// (default 300); ClientPerMinute how fast that refills (default 60).
	ClientBurst     int `yaml:"client_burst"`
	ClientPerMinute int `yaml:"client_per_minute"`
	// TotalBurst and TotalPerMinute are the same for all clients
	// together (defaults 3000 and 1200).
	TotalBurst     int `yaml:"total_burst"`
	TotalPerMinute int `yaml:"total_per_minute"`
}

// DefaultMinFree leaves room for the writes a server has in flight when
// the probe fails (a few large tarball downloads, a 64 MiB publish, the
// atomic rewrite of a package document) to finish while the load balancer
// moves traffic away, and is little on any disk meant to hold a cache.
const DefaultMinFree Size = 512 << 20

// Log sets the log output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
	Access *bool  `yaml:"access"` // one line per request; default true
}

// Connector is an upstream registry.
type Connector struct {
	URL string `yaml:"url"`
	// Timeout bounds connecting, the first response byte, and any pause
	// between two reads of a body.
	Timeout Duration `yaml:"timeout"`
	// Token is sent as a Bearer token to this connector, and only to it.
	Token string `yaml:"token"`
	// CAFile adds PEM certificates to the system roots, for corporate
	// TLS-inspecting proxies.
	CAFile string `yaml:"ca_file"`
	// Retries is how many times an idempotent request is retried after a
	// network error or a 5xx.
	Retries *int `yaml:"retries"`
	// TarballTimeout bounds one whole tarball download.
	TarballTimeout Duration `yaml:"tarball_timeout"`
	// Filter decides which names and versions of this connector users get.
	Filter *filter.Spec `yaml:"filter"`
	// Policy is Filter compiled, filled by validation.
	Policy *filter.Policy `yaml:"-"`
	// MaxTarballSize bounds one tarball downloaded from this connector:
	// a larger one is refused (or cut off) and nothing is stored.
	MaxTarballSize Size `yaml:"max_tarball_size"`
}

// Feed is one registry served at /npm/{name}/.
type Feed struct {
	Default    bool     `yaml:"default"`
	Connectors []string `yaml:"connectors"`
	Access     Access   `yaml:"access"`
	// OwnedScopes are scopes ("@acme") whose names are never requested
	// from any connector: only local packages exist there.
	OwnedScopes []string `yaml:"owned_scopes"`
	// Merge lists names ("name", "@scope/*", "prefix*") whose local and
	// connector versions are mixed, local versions winning a clash. Any
	// other name with local versions is local-only.
	Merge []string `yaml:"merge"`
	// Audit is where npm audit requests go: a connector name, an http(s)
	// URL, or "off". Default: the feed's first connector.
	Audit string `yaml:"audit"`
	// Filter applies to every connector package of the feed, after the
	// connector's own filter.
	Filter *filter.Spec   `yaml:"filter"`
	Policy *filter.Policy `yaml:"-"`
	// OwnedNames claims names ("acme-tool") and prefixes ("acme-*") for
	// the feed as OwnedScopes claims scopes: they are never requested
	// from a connector, and publishing them needs no admin.
	OwnedNames []string `yaml:"owned_names"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Enabled serves the metrics; default true.
	Enabled *bool `yaml:"enabled"`
	// Listen, when set, serves metrics (and pprof) on a separate address
	// instead of the main one.
	Listen string `yaml:"listen"`
	Path   string `yaml:"path"`
	// Pprof serves Go's /debug/pprof/ next to the metrics; off by default.
	Pprof bool `yaml:"pprof"`
	// Access lists who may read the metrics and pprof, as a feed's access
	// lists do (users, groups, $authenticated, $anonymous). Default:
	// $anonymous, unless Token is set (then the token alone).
	Access []string `yaml:"access"`
	// Token, when set, is a bearer token that may read the metrics (as
	// Prometheus sends it: authorization.credentials), e.g.
	// ${METRICS_TOKEN}. It sees every feed's series.
	Token string `yaml:"token"`
}

// TLS makes npmgate serve HTTPS. The files are re-read on SIGHUP.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Publish sets limits on npm publish.
type Publish struct {
	// MaxSize bounds one package tarball; the request body may be a third
	// larger (base64).
	MaxSize Size `yaml:"max_size"`
	// LargeBodies bounds how many request bodies over 1 MiB (publishes,
	// large audits) npmgate holds at once; more wait up to 10 seconds,
	// then get a 503 with Retry-After. Default 4.
	LargeBodies int `yaml:"large_bodies"`
}

// Database is the PostgreSQL that replicas share: published packages,
// users, tokens and API keys, and change notifications.
type Database struct {
	// URL is a PostgreSQL connection URL or key=value string; put the
	// password in an environment variable (${PGPASSWORD}) or use PG* variables.
	URL string `yaml:"url"`
	// MaxConns bounds the pool; default 10.
	MaxConns int `yaml:"max_conns"`
}

// Enabled reports whether a database is configured.
func (d Database) Enabled() bool { return d.URL != "" }

// Storage says where tarballs and upstream snapshots live besides the data
// directory.
type Storage struct {
	S3 *S3 `yaml:"s3"`
}

// S3 is an S3-compatible bucket (AWS S3, MinIO, Ceph, GCS in S3 mode).
// Without access_key and secret_key the standard AWS chain is used:
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials
// (AWS_PROFILE), then the instance or pod role.
type S3 struct {
	// Endpoint is the server's URL, e.g. https://s3.eu-west-1.amazonaws.com
	// or http://minio:9000.
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// PathStyle addresses the bucket in the path, as MinIO and most
	// self-hosted servers need; virtual-host style otherwise.
	PathStyle bool `yaml:"path_style"`
}

// Access lists who may read a feed and who may publish to it. Entries are
// $anonymous (anyone), $authenticated, user names and group names.
type Access struct {
	Read    []string `yaml:"read"`
	Publish []string `yaml:"publish"`
	// Admin may change every local package of the feed (publish, tags,
	// deprecate, unpublish, owners) whoever maintains it, and publish a
	// name a connector serves. Default: nobody.
	Admin []string `yaml:"admin"`
}

// Auth configures users and credentials.
type Auth struct {
	// Users is the htpasswd file (bcrypt). A relative path is under the
	// data directory. Default: users.htpasswd there.
	Users string `yaml:"users"`
	// AllowSignup lets npm adduser create users.
	AllowSignup bool `yaml:"allow_signup"`
	// Groups name sets of users for access lists.
	Groups map[string][]string `yaml:"groups"`
}

// NewLogger makes the logger the log section asks for, writing to w.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level)) // validated
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// UsersFile is the htpasswd file's path.
func (c *Config) UsersFile() string {
	if filepath.IsAbs(c.Auth.Users) {
		return c.Auth.Users
	}
	name := c.Auth.Users
	if name == "" {
		name = "users.htpasswd"
	}
	return filepath.Join(c.Data, name)
}

// TokensFile is where tokens and API keys are stored (hashed).
func (c *Config) TokensFile() string { return filepath.Join(c.Data, "auth", "tokens.json") }

// Error is a configuration error, with the line it concerns when known.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Load reads and validates a file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse reads and validates a document; file names it in errors.
func Parse(data []byte, file string) (*Config, error) {
	data, err := expandEnv(data, file)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	cfg := &Config{}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(file, err)
		}
	}
	if err := cfg.validate(&root); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = file
		}
		return nil, err
	}
	return cfg, nil
}

// expandEnv replaces ${NAME} with the environment variable's value, so
// secrets stay out of the file. An unset variable is an error; a plain
// "$word" (as in access lists) and anything in a comment are left alone.
func expandEnv(data []byte, file string) ([]byte, error) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var out bytes.Buffer
	for i, line := range lines {
		code, comment := splitComment(line)
		var missing string
		code = envRef.ReplaceAllFunc(code, func(m []byte) []byte {
			name := string(m[2 : len(m)-1])
			v, ok := os.LookupEnv(name)
			if !ok && missing == "" {
				missing = name
			}
			return []byte(v)
		})
		if missing != "" {
			return nil, &Error{File: file, Line: i + 1, Msg: fmt.Sprintf("environment variable %s is not set", missing)}
		}
		out.Write(code)
		out.Write(comment)
	}
	return out.Bytes(), nil
}

// splitComment cuts a YAML line at its comment: a '#' at the start or after
// a space, outside quotes.
func splitComment(line []byte) (code, comment []byte) {
	var quote byte
	for i, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], line[i:]
		}
	}
	return line, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := strings.ReplaceAll(m[2], "type config.", "")
		return &Error{File: file, Line: line, Msg: text}
	}
	return &Error{File: file, Msg: msg}
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	scopeRE = regexp.MustCompile(`^@[a-z0-9-~][a-z0-9-._~]*$`)
	// ownedNameRE is a package name, or a prefix of one ending in *.
	ownedNameRE = regexp.MustCompile(`^(@[a-z0-9-~][a-z0-9-._~]*/(\*|[a-z0-9-~][a-z0-9-._~]*\*?)|[a-z0-9-~][a-z0-9-._~]*\*?)$`)
)

func (c *Config) validate(root *yaml.Node) error {
	at := func(msg string, path ...string) error {
		return &Error{Line: lineOf(root, path...), Msg: msg}
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4873"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return at(fmt.Sprintf("listen: %q is not host:port", c.Listen), "listen")
	}
	if c.Data == "" {
		c.Data = "./npmgate-data"
	}
	if c.PublicURL != "" {
		u, err := CheckBaseURL(c.PublicURL)
		if err != nil {
			return at("public_url: "+err.Error(), "public_url")
		}
		c.PublicURL = u
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	}
	c.TrustedPrefixes = nil
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return at(fmt.Sprintf("trusted_proxies: %q is not an address or CIDR prefix", s), "trusted_proxies")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedPrefixes = append(c.TrustedPrefixes, p)
	}
	if c.Metrics.Enabled == nil {
		on := true
		c.Metrics.Enabled = &on
	}
	if c.Metrics.Path == "" {
		c.Metrics.Path = "/metrics"
	}
	if !strings.HasPrefix(c.Metrics.Path, "/") || strings.HasPrefix(c.Metrics.Path, "/npm/") {
		return at("metrics.path: an absolute path outside /npm/", "metrics", "path")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return at(fmt.Sprintf("metrics.listen: %q is not host:port", c.Metrics.Listen), "metrics", "listen")
		}
	}
	if c.Metrics.Access == nil && c.Metrics.Token == "" {
		c.Metrics.Access = []string{auth.SubjectAnonymous}
	}
	if _, err := auth.CompileRule(c.Metrics.Access); err != nil {
		return at(fmt.Sprintf("metrics.access: %v", err), "metrics", "access")
	}
	if t := c.Metrics.Token; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		return at("metrics.token: at least 16 characters, without spaces (for example from openssl rand -hex 32)", "metrics", "token")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return at("tls: give both cert and key", "tls")
	}
	for _, p := range []string{c.TLS.Cert, c.TLS.Key} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return at("tls: "+err.Error(), "tls")
			}
		}
	}
	if err := c.validateShared(at); err != nil {
		return err
	}
	if c.Publish.MaxSize == 0 {
		c.Publish.MaxSize = 64 << 20
	}
	if c.Publish.LargeBodies == 0 {
		c.Publish.LargeBodies = 4
	}
	if c.Publish.LargeBodies < 0 {
		return at("publish.large_bodies: at least 1", "publish", "large_bodies")
	}
	if c.Cache.Memory == 0 {
		c.Cache.Memory = 64 << 20
	}
	if c.Cache.Memory < 1<<20 {
		return at("cache.memory: at least 1MiB", "cache", "memory")
	}
	if c.Cache.MaxAge == 0 {
		c.Cache.MaxAge = Duration(2 * time.Minute)
	}
	if c.Cache.NotFoundTTL == 0 {
		c.Cache.NotFoundTTL = Duration(30 * time.Second)
	}
	if c.Cache.StaleRetry == 0 {
		c.Cache.StaleRetry = Duration(10 * time.Second)
	}
	if err := c.Cache.MissLimit.validate(at); err != nil {
		return err
	}
	if c.Cache.MinFree == nil {
		d := DefaultMinFree
		c.Cache.MinFree = &d
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		return at(fmt.Sprintf("log.level: %q is not one of debug, info, warn, error", c.Log.Level), "log", "level")
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		return at(fmt.Sprintf("log.format: %q is not text or json", c.Log.Format), "log", "format")
	}
	if c.Log.Access == nil {
		on := true
		c.Log.Access = &on
	}
	for name, cn := range c.Connectors {
		if cn == nil {
			return at(fmt.Sprintf("connector %q is empty", name), "connectors", name)
		}
		if !nameRE.MatchString(name) {
			return at(fmt.Sprintf("connector name %q: use lower-case letters, digits, '-', '_' and '.'", name), "connectors", name)
		}
		u, err := CheckBaseURL(cn.URL)
		if err != nil {
			return at(fmt.Sprintf("connectors.%s.url: %v", name, err), "connectors", name, "url")
		}
		cn.URL = u
		if cn.Timeout == 0 {
			cn.Timeout = Duration(30 * time.Second)
		}
		if cn.TarballTimeout == 0 {
			cn.TarballTimeout = Duration(10 * time.Minute)
		}
		if cn.Retries == nil {
			two := 2
			cn.Retries = &two
		}
		if *cn.Retries < 0 || *cn.Retries > 10 {
			return at(fmt.Sprintf("connectors.%s.retries: between 0 and 10", name), "connectors", name, "retries")
		}
		p, err := filter.Compile(cn.Filter)
		if err != nil {
			return at(fmt.Sprintf("connectors.%s.filter: %v", name, err), "connectors", name, "filter")
		}
		cn.Policy = p.WithLabel("connector " + name)
		if cn.CAFile != "" {
			if _, err := os.Stat(cn.CAFile); err != nil {
				return at(fmt.Sprintf("connectors.%s.ca_file: %v", name, err), "connectors", name, "ca_file")
			}
		}
	}
	for _, cn := range c.Connectors {
		if cn.MaxTarballSize == 0 {
			cn.MaxTarballSize = DefaultMaxTarballSize
		}
	}
	if len(c.Feeds) == 0 {
		return at("feeds: at least one feed is needed", "feeds")
	}
	for g, members := range c.Auth.Groups {
		if strings.HasPrefix(g, "$") || g == "" {
			return at(fmt.Sprintf("auth.groups: %q is not a group name", g), "auth", "groups", g)
		}
		for _, m := range members {
			if err := auth.ValidateUserName(m); err != nil {
				return at(fmt.Sprintf("auth.groups.%s: %v", g, err), "auth", "groups", g)
			}
		}
	}
	var defaults []string
	for name, f := range c.Feeds {
		if f == nil {
			f = &Feed{}
			c.Feeds[name] = f
		}
		if !nameRE.MatchString(name) || name == "-" {
			return at(fmt.Sprintf("feed name %q: use lower-case letters, digits, '-', '_' and '.'", name), "feeds", name)
		}
		if f.Access.Read == nil {
			f.Access.Read = []string{auth.SubjectAnonymous}
		}
		if f.Access.Publish == nil {
			f.Access.Publish = []string{auth.SubjectAuthenticated}
		}
		if _, err := auth.CompileRule(f.Access.Read); err != nil {
			return at(fmt.Sprintf("feeds.%s.access.read: %v", name, err), "feeds", name, "access", "read")
		}
		if _, err := auth.CompileRule(f.Access.Publish); err != nil {
			return at(fmt.Sprintf("feeds.%s.access.publish: %v", name, err), "feeds", name, "access", "publish")
		}
		p, err := filter.Compile(f.Filter)
		if err != nil {
			return at(fmt.Sprintf("feeds.%s.filter: %v", name, err), "feeds", name, "filter")
		}
		f.Policy = p.WithLabel("feed " + name)
		switch {
		case f.Audit == "" || f.Audit == "off" || c.Connectors[f.Audit] != nil:
		case strings.HasPrefix(f.Audit, "http://") || strings.HasPrefix(f.Audit, "https://"):
			u, err := CheckBaseURL(f.Audit)
			if err != nil {
				return at(fmt.Sprintf("feeds.%s.audit: %v", name, err), "feeds", name, "audit")
			}
			f.Audit = u
		default:
			return at(fmt.Sprintf("feeds.%s.audit: %q is not a connector, an http(s) URL or off", name, RedactURL(f.Audit)), "feeds", name, "audit")
		}
		for i, sc := range f.OwnedScopes {
			if !scopeRE.MatchString(sc) {
				return at(fmt.Sprintf("feeds.%s.owned_scopes[%d]: %q is not a scope like @acme", name, i, sc), "feeds", name, "owned_scopes")
			}
		}
		for i, m := range f.Merge {
			if m == "" || strings.Count(m, "*") > 1 || (strings.Contains(m, "*") && !strings.HasSuffix(m, "*")) {
				return at(fmt.Sprintf("feeds.%s.merge[%d]: %q: use a name, @scope/* or prefix*", name, i, m), "feeds", name, "merge")
			}
		}
		if _, err := auth.CompileRule(f.Access.Admin); err != nil {
			return at(fmt.Sprintf("feeds.%s.access.admin: %v", name, err), "feeds", name, "access", "admin")
		}
		for i, n := range f.OwnedNames {
			if !ownedNameRE.MatchString(n) {
				return at(fmt.Sprintf("feeds.%s.owned_names[%d]: %q: use a package name or a prefix ending in * (acme-tool, acme-*)", name, i, n), "feeds", name, "owned_names")
			}
		}
		seen := map[string]bool{}
		for _, cn := range f.Connectors {
			if c.Connectors[cn] == nil {
				return at(fmt.Sprintf("feeds.%s.connectors: no connector named %q", name, cn), "feeds", name, "connectors")
			}
			if seen[cn] {
				return at(fmt.Sprintf("feeds.%s.connectors: %q is listed twice", name, cn), "feeds", name, "connectors")
			}
			seen[cn] = true
		}
		if f.Default {
			defaults = append(defaults, name)
		}
	}
	switch {
	case len(defaults) == 1:
		c.DefaultFeed = defaults[0]
	case len(defaults) > 1:
		slices.Sort(defaults)
		return at(fmt.Sprintf("feeds: only one feed can be the default, not %s", strings.Join(defaults, ", ")), "feeds")
	case len(c.Feeds) == 1:
		for name, f := range c.Feeds {
			f.Default = true
			c.DefaultFeed = name
		}
	default:
		return at("feeds: mark one feed as default: true (it is also served at /)", "feeds")
	}
	return nil
}

// CheckBaseURL validates an absolute http(s) URL used as a base: no user
// info, query or fragment. It returns it without a trailing slash. Its
// errors quote the URL without its password (RedactURL).
func CheckBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole URL: keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%q is not a URL: %v", RedactURL(s), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", RedactURL(s))
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", RedactURL(s))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: user info, query and fragment are not allowed (put a credential in the connector's token)", RedactURL(s))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// RedactURL is a URL as it may be printed: a password in its user info
// becomes "xxxxx", and a query (which may carry a key) is dropped. It
// works on strings url.Parse refuses too, so no error message quotes a
// password.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.RawQuery != "" {
			u.RawQuery = "xxxxx"
		}
		return u.Redacted()
	}
	rest, scheme := s, ""
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	auth, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth, path = rest[:i], rest[i:]
	}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		user, _, hasPass := strings.Cut(auth[:at], ":")
		if hasPass {
			user += ":xxxxx"
		}
		auth = user + auth[at:]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i] + "?xxxxx"
	}
	return scheme + auth + path
}

// lineOf finds the line of the node at a path of mapping keys, or of the
// deepest one that exists.
func lineOf(root *yaml.Node, path ...string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			break
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return line
}

// validate fills MissLimit's defaults: generous enough that a cold
// install of a large lockfile (hundreds of lookups, a handful of 404s)
// never meets them.
func (m *MissLimit) validate(at func(string, ...string) error) error {
	for _, f := range []struct {
		v    *int
		def  int
		name string
	}{
		{&m.ClientBurst, 300, "client_burst"}, {&m.ClientPerMinute, 60, "client_per_minute"},
		{&m.TotalBurst, 3000, "total_burst"}, {&m.TotalPerMinute, 1200, "total_per_minute"},
	} {
		if *f.v < 0 {
			return at("cache.miss_limit."+f.name+": a positive number", "cache", "miss_limit", f.name)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return nil
}

// DefaultMaxTarballSize is connectors.*.max_tarball_size when unset: far
// above any real package (the registry's own limit is lower), far below a
// disk.
const DefaultMaxTarballSize = 1 << 30

// Size is a byte count written as 512MiB, 2GB, 1048576.
type Size int64

var sizeRE = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B?|B)?\s*$`)

// ParseSize reads a size such as "512MiB".
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (for example 512MiB)", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	unit := strings.TrimSuffix(m[2], "B")
	mult := map[string]float64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
		"KI": 1 << 10, "MI": 1 << 20, "GI": 1 << 30, "TI": 1 << 40}[unit]
	return Size(f * mult), nil
}

// UnmarshalYAML reads a Size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return &Error{Line: n.Line, Msg: err.Error()}
	}
	*s = v
	return nil
}

// Duration is a time.Duration written as 30s, 2m, 72h.
type Duration time.Duration

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads a Duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return &Error{Line: n.Line, Msg: fmt.Sprintf("%q is not a duration (for example 30s, 2m, 72h)", n.Value)}
	}
	*d = Duration(v)
	return nil
}

// validateShared checks the database and storage sections.
func (c *Config) validateShared(at func(string, ...string) error) error {
	s3 := c.Storage.S3
	if c.Database.Enabled() != (s3 != nil) {
		return at("database and storage.s3: set both (replicas share packages through the database and bytes through the bucket) or neither", "database")
	}
	if s3 == nil {
		return nil
	}
	if c.Database.MaxConns == 0 {
		c.Database.MaxConns = 10
	}
	if c.Database.MaxConns < 2 {
		return at("database.max_conns: at least 2 (one listens for changes)", "database", "max_conns")
	}
	u, err := url.Parse(s3.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return at(fmt.Sprintf("storage.s3.endpoint: %q is not an http(s) URL of a server", RedactURL(s3.Endpoint)), "storage", "s3", "endpoint")
	}
	if !bucketRE.MatchString(s3.Bucket) {
		return at(fmt.Sprintf("storage.s3.bucket: %q is not a bucket name", s3.Bucket), "storage", "s3", "bucket")
	}
	if (s3.AccessKey == "") != (s3.SecretKey == "") {
		return at("storage.s3: give both access_key and secret_key, or neither (then the AWS environment is used)", "storage", "s3")
	}
	s3.Prefix = strings.Trim(s3.Prefix, "/")
	if s3.Region == "" {
		s3.Region = "us-east-1"
	}
	return nil
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
