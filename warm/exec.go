package warm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/npmgate/npmgate/config"
)

// errNoURL is returned by Exec for a job without a URL or a server.
var errNoURL = errors.New("no URL of a running npmgate and no configuration to run one")

// Server is the npmgate server StartLocal runs in-process.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close()
}

// NewServer builds the server for a configuration. The command passes
// the real one, so that warm, which only speaks HTTP to npmgate, does
// not depend on the server's package.
type NewServer func(*config.Config, *slog.Logger) (Server, error)

// Local is an npmgate server run in-process on 127.0.0.1, so that warming
// fills a data directory directly.
type Local struct {
	// URL is the warmed feed's URL, http://127.0.0.1:port/npm/{feed}/.
	URL  string
	srv  Server
	done chan error
}

// StartLocal runs npmgate on cfg in-process, listening on a random port of
// 127.0.0.1. It changes cfg so that rendered tarball URLs point at that
// listener: public_url and forwarded headers are turned off. feed is the
// feed to warm; "" is the default feed.
//
// Opening the data directory sweeps its tmp/ folder, so the directory must
// not be in use by a running npmgate: warm a running server through its URL
// instead.
func StartLocal(cfg *config.Config, feed string, log *slog.Logger, newServer NewServer) (*Local, error) {
	if feed == "" {
		feed = cfg.DefaultFeed
	}
	if feed == "" {
		return nil, fmt.Errorf("the configuration has no default feed: say which one with --feed")
	}
	if cfg.Feeds[feed] == nil {
		names := make([]string, 0, len(cfg.Feeds))
		for n := range cfg.Feeds {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("no feed %q in the configuration (feeds: %s)", feed, strings.Join(names, ", "))
	}
	if newServer == nil {
		return nil, errors.New("no NewServer to run the configuration with")
	}
	cfg.PublicURL = ""
	cfg.TrustForwardedHeaders = false
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := newServer(cfg, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	l := &Local{URL: "http://" + ln.Addr().String() + "/npm/" + feed + "/", srv: srv, done: make(chan error, 1)}
	go func() { l.done <- srv.Serve(ln) }()
	return l, nil
}

// Stop lets requests in flight finish (until ctx ends) and closes the
// server and its data directory.
func (l *Local) Stop(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	l.srv.Close()
	if err == nil {
		err = <-l.done
	}
	return err
}

// Job is one `npmgate warm`.
type Job struct {
	// Lockfile is the lockfile's path.
	Lockfile string
	// URL is the feed URL of a running npmgate. When empty, Server is
	// run in-process (StartLocal) and warmed.
	URL    string
	Server *config.Config
	// Feed is, with Server, the feed to warm ("" for the default one).
	Feed string
	// NewServer builds, with Server, the in-process server.
	NewServer NewServer
	// ServerLog receives, with Server, the in-process server's log; nil
	// discards it.
	ServerLog io.Writer
	// Verbose lists the lockfile entries that are not warmed.
	Verbose bool
	Options
}

// Exec runs a job: progress and notes go to stderr, the summary to stdout.
// It returns the exit code: 0 when every package was warmed, 1 when any
// failed or the job could not start.
func Exec(ctx context.Context, job Job, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "npmgate warm:", err)
		return 1
	}
	if job.URL == "" && job.Server == nil {
		return fail(errNoURL)
	}
	lf, err := ReadFile(job.Lockfile)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "npmgate warm: %s (%s): %d packages", job.Lockfile, lf.Format, len(lf.Packages))
	if n := len(lf.Skipped); n > 0 {
		fmt.Fprintf(stderr, "; %d entries skipped (not from a registry: the project, workspaces, links, git, files)", n)
		if !job.Verbose {
			fmt.Fprint(stderr, ", -v lists them")
		}
	}
	fmt.Fprintln(stderr)
	if job.Verbose {
		for _, s := range lf.Skipped {
			fmt.Fprintln(stderr, "  skipped", s)
		}
	}
	if len(lf.Packages) == 0 {
		fmt.Fprintln(stdout, "nothing to warm")
		return 0
	}
	base := job.URL
	if base == "" {
		var log *slog.Logger
		if job.ServerLog != nil {
			log = job.Server.NewLogger(job.ServerLog)
		} else {
			off := false
			job.Server.Log.Access = &off
		}
		local, err := StartLocal(job.Server, job.Feed, log, job.NewServer)
		if err != nil {
			return fail(err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := local.Stop(sctx); err != nil {
				fmt.Fprintln(stderr, "npmgate warm: stopping the in-process server:", err)
			}
		}()
		base = local.URL
		fmt.Fprintf(stderr, "npmgate warm: serving data directory %s in-process at %s\n", job.Server.Data, base)
	}
	if job.URL != "" {
		if err := ping(ctx, base, job.Client); err != nil {
			return fail(fmt.Errorf("cannot reach npmgate at %s: %v", base, err))
		}
	}
	rep, err := Run(ctx, base, lf.Packages, job.Options)
	if err != nil {
		return fail(err)
	}
	rep.WriteSummary(stdout)
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

// WriteSummary writes the counts and every failure.
func (r *Report) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "%d packages in %s: %d fetched, %d already present, %d failed\n",
		len(r.Results), r.Elapsed.Round(time.Millisecond), r.Fetched, r.Present, r.Failed)
	for _, res := range r.Results {
		if res.Status == Failed {
			fmt.Fprintf(w, "  failed %s: %v\n", res.Package, res.Err)
		}
	}
}

// ping checks that something answers at base before a run sends every
// package there: a wrong URL or a server that is not running fails at once.
// Only a network error counts; any HTTP answer will do.
func ping(ctx context.Context, base string, client *http.Client) error {
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/-/ping", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
