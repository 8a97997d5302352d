// Command npmgate is a caching proxy and private registry for npm.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/policy"
	"github.com/npmgate/npmgate/proxy"
)

const usage = `npmgate: a caching proxy and private registry for npm

Usage:
  npmgate serve [flags]          run the registry
  npmgate check-config FILE      validate a configuration file
  npmgate user add|passwd|rm|list [NAME]
                                 manage users (bcrypt, htpasswd file or the shared database)
  npmgate token create --user NAME [--read-only] [--feed F] [--expires 30d]
  npmgate token list|revoke      tokens for CI and people
  npmgate apikey create --name NAME [--publish] [--feed F] [--expires 90d]
  npmgate apikey list|revoke     API keys (npm _auth = base64 of api:KEY)
  npmgate explain [--feed F] NAME[@RANGE]
                                 show which versions the feed's policy allows, and why not
  npmgate warm [--url URL | --config FILE | --data DIR] LOCKFILE
                                 fill the cache from a lockfile (npm, yarn, pnpm)
  npmgate gc --max-size 20GiB    evict least recently used cache files (never published packages)
  npmgate migrate [--config FILE] [--import-users HTPASSWD]
                                 create or update the shared database's schema (database.url)
  npmgate signing-key generate [--base64] | show
                                 make a registry signing key (PEM, or one line), or print the server's public key
  npmgate version                print the version

Credential commands take --config FILE or --data DIR to find the data.

Run 'npmgate serve -h' for the serve flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runWithInput(args, os.Stdin, stdout, stderr)
}

func runWithInput(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "user":
		return userCmd(args[1:], stdin, stdout, stderr)
	case "token":
		return tokenCmd(args[1:], stdout, stderr, false)
	case "apikey":
		return tokenCmd(args[1:], stdout, stderr, true)
	case "explain":
		return explainCmd(args[1:], stdout, stderr)
	case "gc":
		return gcCmd(args[1:], stdout, stderr)
	case "warm":
		return warmCmd(args[1:], stdout, stderr)
	case "migrate":
		return migrateCmd(args[1:], stdout, stderr)
	case "signing-key":
		return signingKeyCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "npmgate", proxy.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "npmgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: npmgate check-config FILE")
		return 2
	}
	if _, _, err := policy.Load(args[0]); err != nil {
		fmt.Fprintln(stderr, "npmgate: "+err.Error())
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[0])
	return 0
}

// serveFlags are the settings a flag or an NPMGATE_* variable can give;
// they override the configuration file.
type serveFlags struct {
	listen, data, upstream, publicURL, configFile string
	shutdownTimeout                               time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := &serveFlags{}
	env := func(name string) string { return os.Getenv("NPMGATE_" + name) }
	fs.StringVar(&sf.listen, "listen", env("LISTEN"), "address to listen on (default 127.0.0.1:4873) [$NPMGATE_LISTEN]")
	fs.StringVar(&sf.data, "data", env("DATA"), "data directory (default ./npmgate-data) [$NPMGATE_DATA]")
	fs.StringVar(&sf.upstream, "upstream", env("UPSTREAM"), "URL of the default feed's first connector (default https://registry.npmjs.org) [$NPMGATE_UPSTREAM]")
	fs.StringVar(&sf.publicURL, "public-url", env("PUBLIC_URL"), "URL clients reach npmgate at, used in tarball URLs (default: from the Host header) [$NPMGATE_PUBLIC_URL]")
	fs.StringVar(&sf.configFile, "config", env("CONFIG"), "YAML configuration file (default: the embedded default) [$NPMGATE_CONFIG]")
	fs.DurationVar(&sf.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight on SIGTERM/SIGINT")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return sf, nil
}

// loadConfig reads the file (or the embedded default), checks that its
// rules compile, and applies flags. A file whose filters or access lists
// are wrong is refused here, naming the line, before anything starts;
// proxy.New and Reload compile the rules they apply themselves.
func loadConfig(sf *serveFlags) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if sf.configFile != "" {
		cfg, _, err = policy.Load(sf.configFile)
	} else {
		cfg, _, err = policy.Parse(config.Default, "embedded default")
	}
	if err != nil {
		return nil, err
	}
	if sf.listen != "" {
		if _, _, err := net.SplitHostPort(sf.listen); err != nil {
			return nil, fmt.Errorf("--listen: %q is not host:port", sf.listen)
		}
		cfg.Listen = sf.listen
	}
	if sf.data != "" {
		cfg.Data = sf.data
	}
	if sf.publicURL != "" {
		u, err := config.CheckBaseURL(sf.publicURL)
		if err != nil {
			return nil, fmt.Errorf("--public-url: %v", err)
		}
		cfg.PublicURL = u
	}
	if sf.upstream != "" {
		u, err := config.CheckBaseURL(sf.upstream)
		if err != nil {
			return nil, fmt.Errorf("--upstream: %v", err)
		}
		def := cfg.Feeds[cfg.DefaultFeed]
		if len(def.Connectors) == 0 {
			return nil, fmt.Errorf("--upstream: the default feed %q has no connector to point at it", cfg.DefaultFeed)
		}
		cfg.Connectors[def.Connectors[0]].URL = u
	}
	return cfg, nil
}

// reloadOnHUP re-reads the configuration file on SIGHUP and applies its
// rules (filters, access lists) without dropping connections. A file that
// does not validate is refused and the running rules stay.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, sf *serveFlags, srv *proxy.Server, reloadCert func() error, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if err := reloadCert(); err != nil {
			log.Error("TLS certificate reload refused; the running certificate stays", "err", err)
		}
		if sf.configFile == "" {
			log.Warn("SIGHUP: no configuration file to reload (running the embedded default)")
			continue
		}
		cfg, err := loadConfig(sf)
		if err == nil {
			err = srv.Reload(cfg)
		}
		if err != nil {
			log.Error("configuration reload refused; the running rules stay", "file", sf.configFile, "err", err)
			continue
		}
		log.Info("configuration reloaded: filters and access lists applied", "file", sf.configFile)
	}
}

// tlsListener serves TLS with a certificate that reload re-reads from the
// files, so a renewed certificate is picked up on SIGHUP without a restart.
func tlsListener(ln net.Listener, certFile, keyFile string) (net.Listener, func() error, error) {
	var cert atomic.Pointer[tls.Certificate]
	reload := func() error {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		cert.Store(&c)
		return nil
	}
	if err := reload(); err != nil {
		return nil, nil, err
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cert.Load(), nil
		},
	}
	return tls.NewListener(ln, conf), reload, nil
}

func serve(args []string, stderr io.Writer) int {
	sf, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "npmgate serve:", err)
		return 2
	}
	cfg, err := loadConfig(sf)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate: "+err.Error())
		return 1
	}
	dirLock, err := lockDataDir(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate: "+err.Error())
		return 1
	}
	defer dirLock.Close()
	setMemoryLimit(cfg)
	logOut := newLogWriter(stderr, 200*time.Millisecond)
	defer logOut.Close()
	log := cfg.NewLogger(logOut)
	if err := ensureSigningKey(cfg, log); err != nil {
		log.Error("cannot make the registry signing key", "file", cfg.SigningKeyFile(), "err", err)
		return 1
	}
	srv, err := proxy.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer srv.Close()
	// Only a serving process re-reads credentials, measures and evicts:
	// the tools that build a server beside it must not.
	srv.Run(context.Background())
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Listen, "err", err)
		return 1
	}
	ln, scheme, reloadCert, err := withTLS(ln, cfg)
	if err != nil {
		log.Error("cannot load the TLS certificate", "err", err)
		return 1
	}
	stopMetrics, err := serveMetrics(cfg, srv, log)
	if err != nil {
		log.Error("cannot listen for metrics", "addr", cfg.Metrics.Listen, "err", err)
		return 1
	}
	defer stopMetrics()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHUP(ctx, hup, sf, srv, reloadCert, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	feeds := make([]string, 0, len(cfg.Feeds))
	for name := range cfg.Feeds {
		feeds = append(feeds, name)
	}
	log.Info("npmgate listening", "version", proxy.Version, "url", scheme+"://"+ln.Addr().String()+"/",
		"data", cfg.Data, "default_feed", cfg.DefaultFeed, "feeds", strings.Join(feeds, ","))
	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	stop()
	return shutdown(srv, sf.shutdownTimeout, log)
}

// lockDataDir takes the data directory for this server. One server per
// data directory: a second one would lose publishes. Tools (explain, gc,
// warm, user, token) do not take this lock.
func lockDataDir(cfg *config.Config) (io.Closer, error) {
	dirLock, err := cache.LockServer(cfg.Data)
	if errors.Is(err, cache.ErrInUse) {
		return nil, fmt.Errorf("data directory %s is in use by another npmgate server; two servers on one directory lose publishes. Stop the other one, or give each server its own data directory (replicas share packages, users and tokens through database and storage.s3)", cfg.Data)
	}
	return dirLock, err
}

// setMemoryLimit sets a soft limit near what the memory tier is allowed,
// unless GOMEMLIMIT does: it keeps the GC from letting the heap grow to
// twice the live data (its default), which with a full memory tier is
// most of the process's size. The margin covers the package indexes
// (about 25 MiB for a CI fleet's few hundred packages) and the renders in
// flight; the runtime and the binary's pages come on top of it.
func setMemoryLimit(cfg *config.Config) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.Cache.Memory) + 64<<20)
	}
}

// withTLS wraps ln in TLS when the configuration names a certificate,
// returning the scheme served and how to re-read the certificate.
func withTLS(ln net.Listener, cfg *config.Config) (net.Listener, string, func() error, error) {
	if cfg.TLS.Cert == "" {
		return ln, "http", func() error { return nil }, nil
	}
	tlsLn, reloadCert, err := tlsListener(ln, cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, "", nil, err
	}
	return tlsLn, "https", reloadCert, nil
}

// serveMetrics serves /metrics on its own listener when metrics.listen
// says so; the returned func stops it.
func serveMetrics(cfg *config.Config, srv *proxy.Server, log *slog.Logger) (func(), error) {
	if cfg.Metrics.Listen == "" || !*cfg.Metrics.Enabled {
		return func() {}, nil
	}
	mln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return nil, err
	}
	msrv := &fasthttp.Server{Handler: srv.MetricsHandler, Name: "npmgate", ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute}
	go msrv.Serve(mln)
	log.Info("metrics listening", "url", "http://"+mln.Addr().String()+cfg.Metrics.Path, "pprof", cfg.Metrics.Pprof)
	return func() { msrv.Shutdown() }, nil
}

// shutdown finishes the requests in flight within timeout.
func shutdown(srv *proxy.Server, timeout time.Duration, log *slog.Logger) int {
	log.Info("shutting down: finishing requests in flight", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
