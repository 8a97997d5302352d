package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Masterminds/semver/v3"
)

// explainCmd prints, for each version of a package, whether the feed's
// policy allows it or which rule blocks it.
func explainCmd(args []string, stdout, stderr io.Writer) int {
	fs, sf := adminFlags("explain", stderr)
	var feed string
	fs.StringVar(&feed, "feed", "", "feed to explain (default: the default feed)")
	fs.StringVar(&sf.upstream, "upstream", "", "URL of the default feed's first connector")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: npmgate explain [--feed F] [--config FILE] [--data DIR] NAME[@RANGE]")
		return 2
	}
	name, rng := pos[0], ""
	if i := strings.LastIndexByte(pos[0], '@'); i > 0 {
		name, rng = pos[0][:i], pos[0][i+1:]
	}
	var cons *semver.Constraints
	if rng != "" {
		if cons, err = semver.NewConstraint(rng); err != nil {
			fmt.Fprintf(stderr, "npmgate: %q is not a semver range: %v\n", rng, err)
			return 2
		}
	}
	cfg, err := loadConfig(sf)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	srv, err := toolServer(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ex, err := srv.Explain(ctx, feed, name)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s in feed %s\n", name, ex.Feed)
	if ex.Local {
		fmt.Fprintln(stdout, "  a local package (or owned scope): served as published, filters do not apply")
		return 0
	}
	for conn, reason := range ex.NameBlocked {
		fmt.Fprintf(stdout, "  connector %s: name blocked: %s\n", conn, reason)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	shown := 0
	for _, v := range ex.Versions {
		if cons != nil {
			sv, err := semver.NewVersion(v.Version)
			if err != nil || !cons.Check(sv) {
				continue
			}
		}
		shown++
		if v.Allowed {
			fmt.Fprintf(w, "  %s\tallowed\t%s\n", v.Version, v.Connector)
		} else {
			fmt.Fprintf(w, "  %s\tblocked\t%s\t%s\n", v.Version, v.Rule, v.Reason)
		}
	}
	w.Flush()
	if shown == 0 && len(ex.NameBlocked) == 0 {
		fmt.Fprintln(stdout, "  no versions found")
	}
	return 0
}
