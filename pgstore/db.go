// Package pgstore keeps in PostgreSQL what npmgate replicas share:
// documents of published packages, users, and tokens and API keys. Every
// replica reads and writes the same rows, and learns of package changes
// through LISTEN/NOTIFY.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
)

// DB is a pool of connections to the shared database.
type DB struct {
	pool *pgxpool.Pool
	// When this replica last deleted expired tokens (Tokens.prune) and
	// exchanged ID tokens (Replays).
	tokensPruned, replaysPruned rarely
}

// opTimeout bounds one operation of the user and token stores, whose
// interfaces carry no context: a stalled database fails requests (503)
// rather than holding them.
const opTimeout = 10 * time.Second

// Open connects with a pool of cfg.MaxConns connections (10 when 0) and
// checks that the schema is migrated: if not, the error says to run
// npmgate migrate. A schema newer than this program knows is accepted
// (migrations add; a replica of the previous release keeps working while
// the next one rolls out).
func Open(ctx context.Context, cfg config.Database) (*DB, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	pc.MaxConns = int32(cfg.MaxConns)
	if pc.MaxConns <= 0 {
		pc.MaxConns = 10
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool}
	if err := db.checkSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) checkSchema(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	var have *int
	err = db.pool.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&have)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("the database has no npmgate schema: run `npmgate migrate` (with the same configuration) first")
	}
	if err != nil {
		return err
	}
	if have == nil || *have < latest {
		at := 0
		if have != nil {
			at = *have
		}
		return fmt.Errorf("the database schema is at version %d and this npmgate needs %d: run `npmgate migrate` (with the same configuration) first", at, latest)
	}
	return nil
}

// Close closes the pool's connections.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Users is the user store: one row per user with the bcrypt hash.
func (db *DB) Users() auth.UserStore { return &Users{db: db} }

// Tokens is the token store: one row per token or API key.
func (db *DB) Tokens() auth.TokenStore { return &Tokens{db: db} }

// Packages is the store of published package documents.
func (db *DB) Packages() *Packages { return &Packages{db: db} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // 0001_initial
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// migrations are the embedded files, by version.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name it NNNN_what.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		ms = append(ms, migration{version: v, name: e.Name()[:len(e.Name())-len(".sql")], sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3... without gaps", ms[i].name)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// migrateLock is the key of the session advisory lock that makes replicas
// starting together run migrations one at a time ("npmgate" in ASCII).
const migrateLock = 0x6e706d67617465

// Migrate brings the schema to the latest version and returns the
// migrations it applied (none when the schema is up to date). Each runs in
// its own transaction with its row in schema_migrations; a session
// advisory lock makes concurrent calls (replicas starting together) wait
// for each other, so each migration runs once.
func Migrate(ctx context.Context, url string) (applied []string, err error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLock)); err != nil {
		return nil, fmt.Errorf("waiting for the migration lock: %w", err)
	}
	// Closing the connection releases the lock too.
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(migrateLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY,
		name    text NOT NULL,
		applied timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, err
	}
	rows, _ := conn.Query(ctx, "SELECT version FROM schema_migrations")
	done, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if slices.Contains(done, m.version) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
	}
	return applied, nil
}
