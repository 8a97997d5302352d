package config

import (
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

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
	// Filter decides which names and versions of this connector users get:
	// a filter.Spec as written, with its lines, compiled by the policy
	// package (zero when the key is absent).
	Filter yaml.Node `yaml:"filter"`
	// MaxTarballSize bounds one tarball downloaded from this connector:
	// a larger one is refused (or cut off) and nothing is stored.
	MaxTarballSize Size `yaml:"max_tarball_size"`
}

// DefaultMaxTarballSize is connectors.*.max_tarball_size when unset: far
// above any real package (the registry's own limit is lower), far below a
// disk.
const DefaultMaxTarballSize = 1 << 30

func (cn *Connector) setDefaults() {
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
	if cn.MaxTarballSize == 0 {
		cn.MaxTarballSize = DefaultMaxTarballSize
	}
}

// validate checks the connector called name. (Its filter is checked
// where it is compiled, by the policy package.)
func (cn *Connector) validate(name string, at atFunc) error {
	if !nameRE.MatchString(name) {
		return at(fmt.Sprintf("connector name %q: use lower-case letters, digits, '-', '_' and '.'", name), "connectors", name)
	}
	u, err := CheckBaseURL(cn.URL)
	if err != nil {
		return at(fmt.Sprintf("connectors.%s.url: %v", name, err), "connectors", name, "url")
	}
	cn.URL = u
	if *cn.Retries < 0 || *cn.Retries > 10 {
		return at(fmt.Sprintf("connectors.%s.retries: between 0 and 10", name), "connectors", name, "retries")
	}
	if cn.CAFile != "" {
		if _, err := os.Stat(cn.CAFile); err != nil {
			return at(fmt.Sprintf("connectors.%s.ca_file: %v", name, err), "connectors", name, "ca_file")
		}
	}
	return nil
}
