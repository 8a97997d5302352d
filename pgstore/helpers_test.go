package pgstore

import (
	"context"
	"testing"
	"time"
)

// waitListening waits until a session of the database runs LISTEN as its
// last statement (Watch is listening).
func waitListening(t *testing.T, p *Packages, query string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := p.db.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1 AND pid <> pg_backend_pid()", query+" %").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Watch is not listening after 5s")
}

// killListeners ends the database sessions that listen, as a database
// restart or a network cut would.
func killListeners(t *testing.T, p *Packages) {
	t.Helper()
	var n int
	err := p.db.pool.QueryRow(context.Background(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()").Scan(&n)
	if err != nil || n == 0 {
		t.Fatalf("terminated %d listening sessions: %v", n, err)
	}
}
