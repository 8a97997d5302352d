package main

import (
	"context"
	"fmt"
	"io"

	"github.com/npmgate/npmgate/config"
)

// gcCmd evicts cached data over a size cap, once.
func gcCmd(args []string, stdout, stderr io.Writer) int {
	fs, sf := adminFlags("gc", stderr)
	var maxSize string
	var quarantine bool
	fs.StringVar(&maxSize, "max-size", "", "cap for cached tarballs and snapshots, for example 20GiB (default: cache.max_size)")
	fs.BoolVar(&quarantine, "quarantine", false, "also remove the quarantined tarballs of versions taken down upstream (kept for forensics until then)")
	if _, err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	cfg, err := loadConfig(sf)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	limit := int64(cfg.Cache.MaxSize)
	if maxSize != "" {
		sz, err := config.ParseSize(maxSize)
		if err != nil {
			fmt.Fprintln(stderr, "npmgate: --max-size:", err)
			return 2
		}
		limit = int64(sz)
	}
	if limit <= 0 && !quarantine {
		fmt.Fprintln(stderr, "npmgate: give --max-size or set cache.max_size (or --quarantine)")
		return 2
	}
	srv, err := toolServer(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	defer srv.Close()
	if quarantine {
		// First: quarantined bytes count against the cap, so the eviction
		// below must not remove cache files for bytes about to go.
		q, err := srv.ClearQuarantine()
		if err != nil {
			fmt.Fprintln(stderr, "npmgate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "quarantine: removed %d files, %d bytes\n", q.Files, q.Bytes)
		if limit <= 0 {
			return 0
		}
	}
	st, err := srv.GC(context.Background(), limit)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "cached: %d files, %d bytes; published (kept): %d files, %d bytes; evicted: %d files, %d bytes\n",
		st.Files, st.Bytes, st.Protected, st.ProtectedBy, st.Removed, st.RemovedBytes)
	if st.Quarantined > 0 {
		fmt.Fprintf(stdout, "quarantined (kept, counted against the cap; remove with --quarantine): %d files, %d bytes\n", st.Quarantined, st.QuarantinedBytes)
	}
	return 0
}
