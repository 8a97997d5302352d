package config

import (
	"fmt"
	"io"
	"log/slog"
)

// Log sets the log output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
	Access *bool  `yaml:"access"` // one line per request; default true
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

func (l *Log) setDefaults() {
	if l.Level == "" {
		l.Level = "info"
	}
	if l.Format == "" {
		l.Format = "text"
	}
	if l.Access == nil {
		on := true
		l.Access = &on
	}
}

func (l *Log) validate(at atFunc) error {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		return at(fmt.Sprintf("log.level: %q is not one of debug, info, warn, error", l.Level), "log", "level")
	}
	switch l.Format {
	case "text", "json":
	default:
		return at(fmt.Sprintf("log.format: %q is not text or json", l.Format), "log", "format")
	}
	return nil
}
