package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/pgstore"
)

// migrateCmd brings the shared database's schema to this version's, and
// can bring an htpasswd file's users along.
func migrateCmd(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: npmgate migrate [--config FILE] [--import-users HTPASSWD]"
	fs, sf := adminFlags("migrate", stderr)
	var importUsers string
	fs.StringVar(&importUsers, "import-users", "", "copy this htpasswd file's users into the database (users already there are kept as they are)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cfg, err := loadConfig(sf)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate:", err)
		return 1
	}
	if !cfg.Database.Enabled() {
		fmt.Fprintln(stderr, "npmgate migrate: the configuration has no database.url: there is no shared database to migrate (give --config FILE or $NPMGATE_CONFIG)")
		return 1
	}
	// The migration lock may be held by a replica migrating at the same
	// time: wait for it, until interrupted.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	applied, err := pgstore.Migrate(ctx, cfg.Database.URL)
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	if err != nil {
		fmt.Fprintln(stderr, "npmgate migrate:", err)
		return 1
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
	}
	if importUsers == "" {
		return 0
	}
	users, err := auth.ReadHtpasswd(importUsers)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate migrate: --import-users:", err)
		return 1
	}
	db, err := pgstore.Open(ctx, cfg.Database)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate migrate:", err)
		return 1
	}
	defer db.Close()
	added, err := db.ImportUsers(ctx, users)
	if err != nil {
		fmt.Fprintln(stderr, "npmgate migrate: --import-users:", err)
		return 1
	}
	for _, name := range added {
		fmt.Fprintln(stdout, "imported user", name)
	}
	fmt.Fprintf(stdout, "%d of %d users in %s imported (the others were already in the database and were kept)\n", len(added), len(users), importUsers)
	return 0
}
