package proxy

import (
	"context"
	"errors"
	"sync"

	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/osv"
	"github.com/npmgate/npmgate/osv/source"
)

// advisoryDB is the OSV database of osv.source and what the feeds were
// last given of it.
type advisoryDB struct {
	src *source.Source
	mu  sync.Mutex // guards what follows: one hand-over at a time
	db  *osv.DB    // the database the feeds decide with
	gen uint64     // its generation, part of the feeds' fingerprints
}

// openOSV builds the source of osv.source and loads it once (a URL's
// cached copy first), so that the tools that build a server (explain)
// decide with it too; refreshing is Run's (osv/source's Run, then afterOSVRefresh). A server whose first
// load fails still starts: /readyz says it has no database, the next
// refresh tries again.
func (s *Server) openOSV(ctx context.Context) error {
	o := s.cfg.OSV
	if o.Source == "" {
		return nil
	}
	src, err := source.New(source.Options{Location: o.Source, CacheDir: s.cfg.CacheDirOf(), UserAgent: "npmgate/" + Version})
	if err != nil {
		return err
	}
	s.osv = &advisoryDB{src: src}
	s.metrics.register(src.Collector())
	if err := src.Start(ctx); err != nil {
		s.log.Error("osv: no advisory database: the malicious and vulnerable rules block nothing until a refresh succeeds", "source", src.String(), "err", err)
	}
	s.handOverOSV()
	return nil
}

// handOverOSV gives the feeds the database the source serves, when it is
// a new one: their documents are rendered again with it.
func (s *Server) handOverOSV() {
	a := s.osv
	a.mu.Lock()
	defer a.mu.Unlock()
	db := a.src.DB()
	if db == nil || db == a.db {
		return
	}
	a.db = db
	a.gen++
	adv := &feed.Advisories{DB: db, Generation: a.gen}
	for _, f := range s.feeds {
		f.SetAdvisories(adv)
	}
	st := db.Stats()
	s.log.Info("osv: advisory database loaded", "source", a.src.String(), "records", st.Records, "malicious", st.Malicious, "skipped", st.Skipped())
}

// refreshOSV reads osv.source again and hands a new database over. On
// failure the last good one stays (the source's status says so).
func (s *Server) refreshOSV(ctx context.Context) error {
	if s.osv == nil {
		return errors.New("no osv.source configured")
	}
	err := s.osv.src.Refresh(ctx)
	s.afterOSVRefresh(err)
	return err
}

// afterOSVRefresh logs a failed refresh and hands the database over.
func (s *Server) afterOSVRefresh(err error) {
	if err != nil {
		s.log.Warn("osv: refresh failed; the last good database stays", "source", s.osv.src.String(), "err", err)
	}
	s.handOverOSV()
}

// osvDB is the database the feeds decide with, nil for none.
func (s *Server) osvDB() *osv.DB {
	if s.osv == nil {
		return nil
	}
	s.osv.mu.Lock()
	defer s.osv.mu.Unlock()
	return s.osv.db
}
