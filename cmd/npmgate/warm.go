package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/proxy"
	"github.com/npmgate/npmgate/warm"
)

const warmUsage = `usage: npmgate warm [flags] LOCKFILE

Fill npmgate's cache with every packument and tarball a lockfile pins
(package-lock.json, npm-shrinkwrap.json, yarn.lock of yarn 1 or yarn 2+,
pnpm-lock.yaml), for CI images and air-gapped networks.

Through a running npmgate (default: the default feed at http://127.0.0.1:4873/):
  npmgate warm [--url http://127.0.0.1:4873/npm/FEED/] [--token T] LOCKFILE

Straight into a data directory that no running npmgate is using (npmgate
runs in-process on 127.0.0.1 for the duration; serve it later):
  npmgate warm --config FILE | --data DIR [--upstream URL] [--feed F] LOCKFILE
(only these flags choose this mode; $NPMGATE_CONFIG or $NPMGATE_DATA alone
do not, as they are often set where a server runs on that data)

Exits 1 when any package failed; the summary lists each failure.

Flags:
`

// defaultWarmURL is where `npmgate serve` listens by default.
const defaultWarmURL = "http://127.0.0.1:4873/"

// newWarmServer is the server `npmgate warm --config/--data` runs
// in-process.
func newWarmServer(cfg *config.Config, log *slog.Logger) (warm.Server, error) {
	srv, err := proxy.New(cfg, log)
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// warmCmd is `npmgate warm`.
func warmCmd(args []string, stdout, stderr io.Writer) int {
	fs, sf := adminFlags("warm", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, warmUsage)
		fs.PrintDefaults()
	}
	job := warm.Job{NewServer: newWarmServer}
	job.Version = proxy.Version
	fs.StringVar(&job.URL, "url", "", "feed URL of a running npmgate, e.g. http://127.0.0.1:4873/npm/FEED/ (default "+defaultWarmURL+" unless --config or --data)")
	fs.StringVar(&job.Token, "token", os.Getenv("NPMGATE_TOKEN"), "token sent as \"Authorization: Bearer\" to the --url host only [$NPMGATE_TOKEN]")
	fs.IntVar(&job.Concurrency, "concurrency", 8, "packages in flight at once")
	fs.IntVar(&job.Retries, "retries", 2, "retries of a request after a network error or a 5xx answer")
	fs.StringVar(&job.Feed, "feed", "", "with --config/--data: the feed to warm (default: the default feed)")
	fs.StringVar(&sf.upstream, "upstream", "", "with --config/--data: URL of the default feed's first connector")
	fs.BoolVar(&job.Verbose, "v", false, "list skipped lockfile entries; with --config/--data, show the server's log")
	var lockfile string
	fs.StringVar(&lockfile, "lockfile", "", "the lockfile (or give it as the argument)")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if lockfile != "" {
		pos = append(pos, lockfile)
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	job.Lockfile = pos[0]
	if job.Concurrency < 1 || job.Retries < 0 {
		fmt.Fprintln(stderr, "npmgate warm: --concurrency must be at least 1 and --retries at least 0")
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// Only the flags choose the in-process mode: NPMGATE_DATA and
	// NPMGATE_CONFIG are often set where a server runs on that data, and
	// opening it in-process would sweep the running server's tmp/.
	inProcess := set["config"] || set["data"]
	switch {
	case job.URL != "" && inProcess:
		fmt.Fprintln(stderr, "npmgate warm: --url warms a running npmgate, --config/--data a data directory in-process: give one")
		return 2
	case !inProcess:
		for _, name := range []string{"upstream", "feed"} {
			if set[name] {
				fmt.Fprintf(stderr, "npmgate warm: --%s goes with --config or --data (warming a data directory in-process)\n", name)
				return 2
			}
		}
		if job.URL == "" {
			job.URL = defaultWarmURL
		}
		u, err := config.CheckBaseURL(job.URL)
		if err != nil {
			fmt.Fprintln(stderr, "npmgate warm: --url:", err)
			return 2
		}
		job.URL = u + "/"
	default:
		cfg, err := loadConfig(sf)
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		job.Server = cfg
		if job.Verbose {
			job.ServerLog = stderr
		}
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		job.Terminal = true
	}
	job.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return warm.Exec(ctx, job, stdout, stderr)
}
