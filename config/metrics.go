package config

import (
	"fmt"
	"net"
	"strings"
)

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
	// $anonymous, unless Token is set (then the token alone). The policy
	// package checks and compiles it.
	Access []string `yaml:"access"`
	// Token, when set, is a bearer token that may read the metrics (as
	// Prometheus sends it: authorization.credentials), e.g.
	// ${METRICS_TOKEN}. It sees every feed's series.
	Token string `yaml:"token"`
}

func (m *Metrics) setDefaults() {
	if m.Enabled == nil {
		on := true
		m.Enabled = &on
	}
	if m.Path == "" {
		m.Path = "/metrics"
	}
	if m.Access == nil && m.Token == "" {
		m.Access = []string{subjectAnonymous}
	}
}

func (m *Metrics) validate(at atFunc) error {
	if !strings.HasPrefix(m.Path, "/") || strings.HasPrefix(m.Path, "/npm/") {
		return at("metrics.path: an absolute path outside /npm/", "metrics", "path")
	}
	if m.Listen != "" {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			return at(fmt.Sprintf("metrics.listen: %q is not host:port", m.Listen), "metrics", "listen")
		}
	}
	if t := m.Token; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		return at("metrics.token: at least 16 characters, without spaces (for example from openssl rand -hex 32)", "metrics", "token")
	}
	return nil
}
