package config

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

func (p *Publish) setDefaults() {
	if p.MaxSize == 0 {
		p.MaxSize = 64 << 20
	}
	if p.LargeBodies == 0 {
		p.LargeBodies = 4
	}
}

func (p *Publish) validate(at atFunc) error {
	if p.LargeBodies < 0 {
		return at("publish.large_bodies: at least 1", "publish", "large_bodies")
	}
	return nil
}
