package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

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

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (d *Database) setDefaults() {
	if d.Enabled() && d.MaxConns == 0 {
		d.MaxConns = 10
	}
}

func (d *Database) validate(at atFunc) error {
	if d.MaxConns < 2 {
		return at("database.max_conns: at least 2 (one listens for changes)", "database", "max_conns")
	}
	return nil
}

func (s *Storage) setDefaults() {
	if s.S3 != nil {
		s.S3.setDefaults()
	}
}

func (s *S3) setDefaults() {
	s.Prefix = strings.Trim(s.Prefix, "/")
	if s.Region == "" {
		s.Region = "us-east-1"
	}
}

func (s *S3) validate(at atFunc) error {
	u, err := url.Parse(s.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return at(fmt.Sprintf("storage.s3.endpoint: %q is not an http(s) URL of a server", RedactURL(s.Endpoint)), "storage", "s3", "endpoint")
	}
	if !bucketRE.MatchString(s.Bucket) {
		return at(fmt.Sprintf("storage.s3.bucket: %q is not a bucket name", s.Bucket), "storage", "s3", "bucket")
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		return at("storage.s3: give both access_key and secret_key, or neither (then the AWS environment is used)", "storage", "s3")
	}
	return nil
}

// validateShared checks the database and storage sections, which go
// together.
func (c *Config) validateShared(at atFunc) error {
	s3 := c.Storage.S3
	if c.Database.Enabled() != (s3 != nil) {
		return at("database and storage.s3: set both (replicas share packages through the database and bytes through the bucket) or neither", "database")
	}
	if s3 == nil {
		return nil
	}
	if err := c.Database.validate(at); err != nil {
		return err
	}
	return s3.validate(at)
}
