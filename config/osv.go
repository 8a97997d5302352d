package config

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// OSV configures the advisory database the malicious and vulnerable
// filter rules and the local audit read (an OSV export, as OSV publishes
// one per ecosystem).
type OSV struct {
	// Source is where the export comes from: a zip, a directory of JSON
	// records or one .json file on disk, or an http(s) URL of a zip (for
	// npm, https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip).
	// Empty: no database; the rules and audit: local are then refused.
	Source string `yaml:"source"`
	// Refresh is how often the source is read again (a conditional GET
	// for a URL); default 6h. A failed refresh keeps the last good copy.
	Refresh Duration `yaml:"refresh"`
	// CacheDir keeps the last good download of a URL, so that a restart
	// while it is unreachable still has a database; default DATA/osv.
	CacheDir string `yaml:"cache_dir"`
}

// Audit modes of feeds.NAME.audit answered from the OSV database.
const (
	AuditLocal          = "local"
	AuditLocalConnector = "local+connector"
)

func (o *OSV) setDefaults() {
	if o.Source == "" {
		return
	}
	if o.Refresh == 0 {
		o.Refresh = Duration(6 * time.Hour)
	}
}

// CacheDirOf is osv.cache_dir, or DATA/osv when it is not set (resolved
// late, so that serve --data moves it with the data directory).
func (c *Config) CacheDirOf() string {
	if c.OSV.CacheDir != "" {
		return c.OSV.CacheDir
	}
	return filepath.Join(c.Data, "osv")
}

// validateOSV checks the osv section and what depends on it: a feed
// answering audits locally needs a database, local+connector a connector.
func (c *Config) validateOSV(at atFunc) error {
	o := &c.OSV
	if o.Source != "" {
		if strings.HasPrefix(o.Source, "http://") || strings.HasPrefix(o.Source, "https://") {
			if _, err := CheckBaseURL(o.Source); err != nil {
				return at(fmt.Sprintf("osv.source: %v", err), "osv", "source")
			}
		}
		if o.Refresh.D() < time.Minute {
			return at("osv.refresh: at least 1m (the export changes a few times an hour at most)", "osv", "refresh")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Feeds)) {
		f := c.Feeds[name]
		if f.Audit != AuditLocal && f.Audit != AuditLocalConnector {
			continue
		}
		if o.Source == "" {
			return at(fmt.Sprintf("feeds.%s.audit: %s needs an advisory database: set osv.source", name, f.Audit), "feeds", name, "audit")
		}
		if f.Audit == AuditLocalConnector && len(f.Connectors) == 0 {
			return at(fmt.Sprintf("feeds.%s.audit: local+connector needs a connector in the feed (or use local)", name), "feeds", name, "audit")
		}
	}
	return nil
}
