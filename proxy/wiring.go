package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/semaphore"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/policy"
	"github.com/npmgate/npmgate/proxy/upstream"
	"github.com/npmgate/npmgate/trustpub"
)

// New builds a server from a validated configuration: its stores, the
// credential service, one upstream client per connector and the feeds
// built from them. It starts nothing (see Run).
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	rules, err := policy.Compile(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, feeds: map[string]*feed.Feed{}, stop: func() {}}
	s.lifetime, s.endLifetime = context.WithCancel(context.Background())
	if err := s.openStores(); err != nil {
		return nil, err
	}
	s.metricsAccess = rules.Metrics
	s.publishers.Store(&rules.Trusted)
	s.metrics = newMetrics(s)
	s.largeBodies = semaphore.NewWeighted(int64(max(cfg.Publish.LargeBodies, 1)))
	for _, step := range []func() error{func() error { return s.openReplicasAndAuth(rules) }, s.newVerifier, func() error { return s.buildFeeds(rules) }, func() error { return s.openOSV(s.lifetime) }} {
		if err := step(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.newUI(); err != nil {
		s.Close()
		return nil, err
	}
	s.http = s.newHTTPServer()
	s.setCanonical(cfg.Listen)
	s.misses = newMisses(cfg.Cache.MissLimit)
	return s, nil
}

// openStores opens this machine's tiers: the data directory and the
// memory tier spilling into it.
func (s *Server) openStores() error {
	disk, err := cache.OpenDisk(s.cfg.Data)
	if err != nil {
		return err
	}
	mem, err := cache.NewMemory(int64(s.cfg.Cache.Memory))
	if err != nil {
		disk.Close()
		return err
	}
	if dir, ok := disk.SpillDir(); ok {
		mem.SpillTo(dir, spillMin)
	}
	s.mem, s.disk, s.snapshots, s.packages = mem, disk, disk, &feed.DiskPackages{Disk: disk}
	return nil
}

// maxSnapshotsInFlight bounds the snapshot bytes waiting for the bucket;
// past it, a load writes its snapshot before it answers.
const maxSnapshotsInFlight = 256 << 20

// openReplicasAndAuth connects to what replicas share, when configured
// (then local packages, users, tokens, snapshots and tarballs live
// there), and builds the credential service on the right stores.
func (s *Server) openReplicasAndAuth(rules *policy.Rules) error {
	cfg := s.cfg
	authOpts := auth.Options{
		UsersFile: cfg.UsersFile(), TokensFile: cfg.TokensFile(),
		Groups: cfg.Auth.Groups, AllowSignup: cfg.Auth.AllowSignup,
		DefaultTTL: cfg.Auth.Tokens.DefaultTTL.D(), MaxTTL: cfg.Auth.Tokens.MaxTTL.D(),
		TwoFactorFile: cfg.TwoFactorFile(), Admins: rules.Admins,
	}
	var err error
	if s.sharedState, err = openReplicas(context.Background(), cfg); err != nil {
		return err
	}
	if sh := s.sharedState; sh != nil {
		// Snapshots are written to the bucket in the background: the
		// document is in hand, and the snapshot only spares a later
		// upstream request.
		s.bucket, s.packages = sh.bucket, sh.db.Packages()
		s.snapshots = cache.NewAsyncStore(sh.bucket, maxSnapshotsInFlight, s.log)
		authOpts.Users, authOpts.Tokens, authOpts.TwoFactorStore = sh.db.Users(), sh.db.Tokens(), sh.db.TwoFactor()
	}
	s.auth, err = auth.New(authOpts)
	return err
}

// buildFeeds makes one upstream client per connector, the fills their
// tarballs share, and every feed from its explicit dependencies.
func (s *Server) buildFeeds(rules *policy.Rules) error {
	cfg := s.cfg
	var tarballTimeout time.Duration
	clients := map[string]*upstream.Client{}
	for name, c := range cfg.Connectors {
		cl, err := upstream.New(upstream.Options{
			Name: name, BaseURL: c.URL, Token: c.Token, CAFile: c.CAFile,
			Timeout: c.Timeout.D(), Retries: *c.Retries,
			UserAgent: "npmgate/" + Version,
			Observe:   s.metrics.upstreamObserver(name),
		})
		if err != nil {
			return err
		}
		clients[name] = cl
		tarballTimeout = max(tarballTimeout, c.TarballTimeout.D())
	}
	s.fills = cache.NewFills(s.disk, max(tarballTimeout, time.Minute))
	local := cache.NewLocal(s.disk, s.fills)
	s.blobs = local
	if s.bucket != nil {
		t := cache.NewTiered(local, s.bucket, s.log)
		t.Uploaded = s.metrics.CountSharedUpload
		s.blobs = t
	}
	signer, err := cfg.LoadSigner()
	if err != nil {
		return err
	}
	s.feedDeps = &feed.Deps{
		Mem: s.mem, Disk: s.disk, Snapshots: s.snapshots, Blobs: s.blobs, Packages: s.packages,
		Users: s.auth.Users, Metrics: s.metrics, Log: s.log, Cache: cfg.Cache, Prefetch: &s.prefetch,
		Signer: signer,
	}
	for name, fc := range cfg.Feeds {
		f := &feed.Feed{Name: name, Deps: s.feedDeps, OwnedScopes: fc.OwnedScopes, MergeNames: fc.Merge, OwnedNames: fc.OwnedNames}
		for _, cn := range fc.Connectors {
			f.Connectors = append(f.Connectors, &feed.Connector{Name: cn, Client: clients[cn], Config: cfg.Connectors[cn]})
		}
		f.SetRules(rules.Feeds[name])
		audit, err := auditTarget(cfg, fc, f, clients)
		if err != nil {
			return err
		}
		f.Audit = audit
		s.feeds[name] = f
		if name == cfg.DefaultFeed {
			s.def = f
		}
	}
	return nil
}

// auditTarget is where a feed's npm audit requests go (feeds.NAME.audit):
// nowhere, its first connector, a named connector, or a URL.
func auditTarget(cfg *config.Config, fc *config.Feed, f *feed.Feed, clients map[string]*upstream.Client) (*feed.AuditTarget, error) {
	switch {
	case fc.Audit == "off":
	case fc.Audit == config.AuditLocal:
		// Answered from the OSV database (proxy/audit.go): no client.
		return &feed.AuditTarget{Local: true}, nil
	case fc.Audit == config.AuditLocalConnector:
		c := f.Connectors[0].Client
		return &feed.AuditTarget{Local: true, Client: c, Base: c.BaseURL()}, nil
	case fc.Audit == "" && len(f.Connectors) > 0:
		return &feed.AuditTarget{Client: f.Connectors[0].Client, Base: f.Connectors[0].Client.BaseURL()}, nil
	case cfg.Connectors[fc.Audit] != nil:
		return &feed.AuditTarget{Client: clients[fc.Audit], Base: cfg.Connectors[fc.Audit].URL}, nil
	case fc.Audit != "":
		cl, err := upstream.New(upstream.Options{Name: "audit", BaseURL: fc.Audit, Timeout: 30 * time.Second, UserAgent: "npmgate/" + Version})
		if err != nil {
			return nil, err
		}
		return &feed.AuditTarget{Client: cl, Base: fc.Audit}, nil
	}
	return nil, nil
}

// newHTTPServer is the fasthttp server: its buffers, timeouts and
// defences.
func (s *Server) newHTTPServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            s.Handle,
		Name:               "npmgate",
		ReadBufferSize:     16 << 10,
		ReadTimeout:        2 * time.Minute,
		WriteTimeout:       10 * time.Minute,
		IdleTimeout:        2 * time.Minute,
		MaxRequestBodySize: streamThreshold,
		ErrorHandler:       requestError,
		// Bodies reach the handler as streams, read by the route once the
		// caller passed its checks, within the route's limit (readBody).
		StreamRequestBody:     true,
		NoDefaultContentType:  true,
		NoDefaultServerHeader: false,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{s.log},

		// fasthttp would read a multipart body (to memory and temporary
		// files) before the handler runs; npm sends none.
		DisablePreParseMultipartForm: true,
		// fasthttp's errors would otherwise quote the request's raw
		// headers, credentials included, in the log.
		SecureErrorLogMessage: true,
	}
}

// newVerifier makes the verifier of trusted publishing's ID tokens, with
// the keys of publishing.issuers read from their files.
// With replicas, the ID tokens exchanged are remembered in the database,
// so that one is exchanged once whichever replica it is taken to.
func (s *Server) newVerifier() error {
	files := map[string]string{}
	for _, is := range s.cfg.Publishing.Issuers {
		files[is.Issuer] = is.JWKSFile
	}
	o := trustpub.Options{Files: files}
	if s.sharedState != nil {
		o.Replays = s.sharedState.db.Replays()
	}
	v, err := trustpub.NewVerifier(o)
	if err != nil {
		return fmt.Errorf("publishing.issuers: %w", err)
	}
	s.oidc = v
	return nil
}
