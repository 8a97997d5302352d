package config

import "os"

// TLS makes npmgate serve HTTPS. The files are re-read on SIGHUP.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

func (t *TLS) validate(at atFunc) error {
	if (t.Cert == "") != (t.Key == "") {
		return at("tls: give both cert and key", "tls")
	}
	for _, p := range []string{t.Cert, t.Key} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return at("tls: "+err.Error(), "tls")
			}
		}
	}
	return nil
}
