package config

import (
	"time"

	"go.yaml.in/yaml/v3"
)

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
	// Recheck is how often every cached packument is revalidated even
	// when nobody asks for it, so that takedowns and new advisories reach
	// packages nobody installed lately; 0 or "off" disables it. Default
	// DefaultRecheck.
	Recheck *Interval `yaml:"recheck"`
}

// DefaultRecheck revalidates every cached packument once a day: npm's
// takedowns reach idle caches within a day, at one request per cached
// name per day.
const DefaultRecheck = Interval(24 * time.Hour)

// Interval is a Duration that may also be written "off" (0).
type Interval Duration

// D is the value as a time.Duration; 0 is off.
func (d *Interval) D() time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// UnmarshalYAML reads an Interval.
func (d *Interval) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "off" {
		*d = 0
		return nil
	}
	var v Duration
	if err := v.UnmarshalYAML(n); err != nil {
		return err
	}
	*d = Interval(v)
	return nil
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

func (c *Cache) setDefaults() {
	if c.Memory == 0 {
		c.Memory = 64 << 20
	}
	if c.MaxAge == 0 {
		c.MaxAge = Duration(2 * time.Minute)
	}
	if c.NotFoundTTL == 0 {
		c.NotFoundTTL = Duration(30 * time.Second)
	}
	if c.StaleRetry == 0 {
		c.StaleRetry = Duration(10 * time.Second)
	}
	c.MissLimit.setDefaults()
	if c.MinFree == nil {
		d := DefaultMinFree
		c.MinFree = &d
	}
	if c.Recheck == nil {
		d := DefaultRecheck
		c.Recheck = &d
	}
}

func (c *Cache) validate(at atFunc) error {
	if c.Memory < 1<<20 {
		return at("cache.memory: at least 1MiB", "cache", "memory")
	}
	return c.MissLimit.validate(at)
}

// limitField is one of MissLimit's keys with its default.
type limitField struct {
	v    *int
	def  int
	name string
}

// fields are MissLimit's keys with their defaults: generous enough that a
// cold install of a large lockfile (hundreds of lookups, a handful of
// 404s) never meets them.
func (m *MissLimit) fields() []limitField {
	return []limitField{
		{&m.ClientBurst, 300, "client_burst"}, {&m.ClientPerMinute, 60, "client_per_minute"},
		{&m.TotalBurst, 3000, "total_burst"}, {&m.TotalPerMinute, 1200, "total_per_minute"},
	}
}

// setDefaults gives a key left at 0 its default; a negative one is left
// for validate to refuse.
func (m *MissLimit) setDefaults() {
	for _, f := range m.fields() {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
}

func (m *MissLimit) validate(at atFunc) error {
	for _, f := range m.fields() {
		if *f.v < 0 {
			return at("cache.miss_limit."+f.name+": a positive number", "cache", "miss_limit", f.name)
		}
	}
	return nil
}
