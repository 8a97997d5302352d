// Package config reads npmgate's one YAML configuration file. Unknown keys
// and bad values are errors that name their line; nothing is ignored.
//
// Each section has its own file: its type, its setDefaults (the values an
// empty key takes) and its validate (the errors it can have). Config's
// validate calls them in a fixed order, so the first error of a file with
// several is always the same one.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
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
	// Signing is the key npmgate signs the versions published to it with.
	Signing Signing `yaml:"signing"`
	// Publishing is trusted publishing from CI (OIDC).
	Publishing Publishing `yaml:"publishing"`
	// OSV is the advisory database (see osv.go).
	OSV OSV `yaml:"osv"`

	// Parsed forms, filled by Validate.
	TrustedPrefixes []netip.Prefix `yaml:"-"`
	DefaultFeed     string         `yaml:"-"`

	// file and root are the file the configuration was parsed from and
	// its YAML tree, for the errors of those who check its sections
	// later (At, YAMLError).
	file string
	root *yaml.Node
}

// Load reads and validates a file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

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
	cfg := &Config{file: file, root: &root}
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

// atFunc makes the error msg at the line of the key at path (or of the
// deepest part of it the file has).
type atFunc func(msg string, path ...string) error

// validate fills the defaults, then checks the sections in the order
// their errors have always been reported in.
func (c *Config) validate(root *yaml.Node) error {
	at := func(msg string, path ...string) error {
		return &Error{Line: lineOf(root, path...), Msg: msg}
	}
	c.setDefaults()
	for _, check := range []func(atFunc) error{
		c.validateServer,
		c.Metrics.validate,
		c.TLS.validate,
		c.validateShared,
		c.Publish.validate,
		c.Cache.validate,
		c.Log.validate,
		c.validateConnectors,
		c.requireFeeds,
		c.Auth.validate,
		c.validateFeeds,
		c.validateSigning,
		c.validatePublishing,
		c.validateOSV,
	} {
		if err := check(at); err != nil {
			return err
		}
	}
	return nil
}

// setDefaults gives every key left empty its default value.
func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4873"
	}
	if c.Data == "" {
		c.Data = "./npmgate-data"
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	}
	c.Metrics.setDefaults()
	c.Database.setDefaults()
	c.Storage.setDefaults()
	c.Publish.setDefaults()
	c.Cache.setDefaults()
	c.Log.setDefaults()
	c.OSV.setDefaults()
	for _, cn := range c.Connectors {
		if cn != nil {
			cn.setDefaults()
		}
	}
	for name, f := range c.Feeds {
		if f == nil {
			f = &Feed{}
			c.Feeds[name] = f
		}
		f.setDefaults()
	}
}

// validateServer checks the top-level keys: the listener, the public URL
// and the trusted proxies, which it parses into TrustedPrefixes.
func (c *Config) validateServer(at atFunc) error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return at(fmt.Sprintf("listen: %q is not host:port", c.Listen), "listen")
	}
	if c.PublicURL != "" {
		u, err := CheckBaseURL(c.PublicURL)
		if err != nil {
			return at("public_url: "+err.Error(), "public_url")
		}
		c.PublicURL = u
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
	return nil
}

// validateConnectors checks each connector under its name.
func (c *Config) validateConnectors(at atFunc) error {
	for name, cn := range c.Connectors {
		if cn == nil {
			return at(fmt.Sprintf("connector %q is empty", name), "connectors", name)
		}
		if err := cn.validate(name, at); err != nil {
			return err
		}
	}
	return nil
}

// requireFeeds refuses a file without feeds: there would be nothing to
// serve.
func (c *Config) requireFeeds(at atFunc) error {
	if len(c.Feeds) == 0 {
		return at("feeds: at least one feed is needed", "feeds")
	}
	return nil
}

// validateFeeds checks each feed under its name, then picks the default
// feed: the one marked so, or the only one.
func (c *Config) validateFeeds(at atFunc) error {
	var defaults []string
	for name, f := range c.Feeds {
		if err := f.validate(name, c.Connectors, at); err != nil {
			return err
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
