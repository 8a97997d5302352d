package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/pgstore"
)

// replicas is what replicas share: PostgreSQL for published packages,
// users and tokens, and a bucket for tarballs and upstream snapshots. The
// data directory is then only this replica's cache.
type replicas struct {
	db     *pgstore.DB
	bucket *cache.S3
}

// openReplicas connects to the database and the bucket the configuration
// names, or returns nil when it names none.
func openReplicas(ctx context.Context, cfg *config.Config) (*replicas, error) {
	if !cfg.Database.Enabled() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := pgstore.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	bucket, err := cache.OpenS3(ctx, s3Options(cfg.Storage.S3))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage.s3: %w", err)
	}
	return &replicas{db: db, bucket: bucket}, nil
}

// s3Options are the storage.s3 section as the cache's S3 tier takes it.
func s3Options(s *config.S3) cache.S3Options {
	return cache.S3Options{
		Endpoint:  s.Endpoint,
		Region:    s.Region,
		Bucket:    s.Bucket,
		Prefix:    s.Prefix,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		PathStyle: s.PathStyle,
	}
}

// watchPackages keeps the memory tier in step with publishes made on
// other replicas: the database notifies every replica of each change when
// it commits. After a lost connection anything may have changed, so
// everything is dropped.
func (s *Server) watchPackages(ctx context.Context) {
	s.sharedState.db.Packages().Watch(ctx, func(feed, name string) {
		if feed == "" && name == "" {
			s.mem.Clear()
			return
		}
		if f := s.feeds[feed]; f != nil {
			f.Invalidate(name)
		}
	})
}

// checkReady is the readiness probe: the data directory takes writes and
// has cache.min_free free, and the database and the bucket, when shared,
// answer.
func (s *Server) checkReady() error {
	if s.osv != nil {
		// No database yet: the advisory rules would block nothing.
		if ok, msg := s.osv.src.Status().Ready(); !ok {
			return errors.New(msg)
		}
	}
	if err := s.disk.Writable(); err != nil {
		return fmt.Errorf("data directory is not writable: %w", err)
	}
	if mf := s.cfg.Cache.MinFree; mf != nil && *mf > 0 {
		min := *mf
		free, err := s.disk.Free()
		if err != nil {
			return fmt.Errorf("data directory: cannot read its free space: %w", err)
		}
		if free < uint64(min) {
			return fmt.Errorf("data directory %s has %d MiB free, less than cache.min_free (%d MiB): free space, or lower cache.min_free", s.cfg.Data, free>>20, min>>20)
		}
	}
	if s.sharedState == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	if err := s.sharedState.db.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("database unreachable: %w", err))
	}
	if err := s.sharedState.bucket.Check(ctx); err != nil {
		errs = append(errs, fmt.Errorf("bucket unreachable: %w", err))
	}
	return errors.Join(errs...)
}

// readyDetail is the body of a ready server that has more to say than
// "ready" ("" otherwise): the OSV database served and, after a failed
// refresh, that it is the last good copy and why the refresh failed.
func (s *Server) readyDetail() string {
	if s.osv == nil {
		return ""
	}
	_, msg := s.osv.src.Status().Ready()
	body, _ := json.Marshal(map[string]string{"status": "ready", "osv": msg})
	return string(body)
}
