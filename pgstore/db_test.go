package pgstore

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/testservices"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testservices.StopAll()
	os.Exit(code)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// migrated returns the URL of a new database at the latest schema.
func migrated(t *testing.T) string {
	t.Helper()
	url := testservices.Postgres(t)
	if _, err := Migrate(testCtx(t), url); err != nil {
		t.Fatal(err)
	}
	return url
}

// open is a replica's pool on the database at url.
func open(t *testing.T, url string) *DB {
	t.Helper()
	db, err := Open(testCtx(t), config.Database{URL: url, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestMigrate(t *testing.T) {
	ctx := testCtx(t)
	url := testservices.Postgres(t)
	_, err := Open(ctx, config.Database{URL: url})
	if err == nil || !strings.Contains(err.Error(), "npmgate migrate") {
		t.Fatalf("Open of an empty database = %v, want an error saying to run npmgate migrate", err)
	}
	applied, err := Migrate(ctx, url)
	if err != nil || len(applied) == 0 || applied[0] != "0001_initial" {
		t.Fatalf("first Migrate = %v, %v", applied, err)
	}
	applied, err = Migrate(ctx, url)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", applied, err)
	}
	db := open(t, url)
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// A schema behind this program is refused with the same advice.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, config.Database{URL: url}); err == nil || !strings.Contains(err.Error(), "npmgate migrate") {
		t.Errorf("Open of an unmigrated schema = %v", err)
	}
}

func TestConcurrentMigrate(t *testing.T) {
	ctx := testCtx(t)
	url := testservices.Postgres(t)
	var wg sync.WaitGroup
	results := make([][]string, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = Migrate(ctx, url) })
	}
	wg.Wait()
	total := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += len(results[i])
	}
	ms, _ := migrations()
	if total != len(ms) {
		t.Errorf("%d migrations applied in all, want each of %d once: %v", total, len(ms), results)
	}
	open(t, url)
}

func TestMigrationFilesAreWellFormed(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 || strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %d: %+v", i, m.name)
		}
	}
}
