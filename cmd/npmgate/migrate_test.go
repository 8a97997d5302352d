package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/testservices"
	"github.com/npmgate/npmgate/pgstore"
)

var client = netip.MustParseAddr("192.0.2.1")

func TestMain(m *testing.M) {
	code := m.Run()
	testservices.StopAll()
	os.Exit(code)
}

// sharedConfig writes a configuration with a database (and the bucket the
// configuration requires with it, which these commands never contact).
func sharedConfig(t *testing.T, url string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "npmgate.yaml")
	yaml := "data: " + filepath.Join(dir, "data") + `
feeds:
  npm: {}
database:
  url: "` + url + `"
storage:
  s3:
    endpoint: http://127.0.0.1:9
    bucket: test-bucket
`
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMigrateAndCredentialsInTheDatabase(t *testing.T) {
	url := testservices.Postgres(t)
	cfgFile := sharedConfig(t, url)
	cli := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := runWithInput(append(args, "--config", cfgFile), strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}

	// Before migrating, credential commands say what to do.
	if code, _, e := cli("", "user", "list"); code != 1 || !strings.Contains(e, "npmgate migrate") {
		t.Errorf("user list on an empty database: %d %q", code, e)
	}
	if code, out, e := cli("", "migrate"); code != 0 || !strings.Contains(out, "applied 0001_initial") {
		t.Fatalf("migrate: %d %q %q", code, out, e)
	}
	if code, out, e := cli("", "migrate"); code != 0 || out != "schema is up to date\n" {
		t.Fatalf("second migrate: %d %q %q", code, out, e)
	}

	if code, out, e := cli("correct horse battery\n", "user", "add", "alice"); code != 0 || !strings.Contains(out, "the database") {
		t.Fatalf("user add: %d %q %q", code, out, e)
	}
	if code, _, _ := cli("another password\n", "user", "add", "alice"); code != 1 {
		t.Error("adding an existing user succeeded")
	}
	code, secret, e := cli("", "token", "create", "--user", "alice", "--read-only")
	if code != 0 || !strings.HasPrefix(secret, "npmg_") {
		t.Fatalf("token create: %d %q %q", code, secret, e)
	}
	if code, out, _ := cli("", "token", "list"); code != 0 || !strings.Contains(out, "alice") {
		t.Errorf("token list: %q", out)
	}

	// An htpasswd file's users come along; those already there are kept.
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	file, _ := auth.OpenUsers(htpasswd)
	file.Set("alice", "alice-file-password")
	file.Set("bob", "bob-file-password")
	code, out, e := cli("", "migrate", "--import-users", htpasswd)
	if code != 0 || !strings.Contains(out, "imported user bob") || strings.Contains(out, "imported user alice") {
		t.Fatalf("migrate --import-users: %d %q %q", code, out, e)
	}

	// What the commands wrote is in the database, as a replica sees it;
	// the data directory's files are not used.
	db, err := pgstore.Open(context.Background(), config.Database{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := auth.New(auth.Options{Users: db.Users(), Tokens: db.Tokens()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"alice", "correct horse battery"}, {"bob", "bob-file-password"}} {
		if err := svc.CheckPassword(c[0], c[1], client); err != nil {
			t.Errorf("%s in the database: %v", c[0], err)
		}
	}
	if p, err := svc.Authenticate("Bearer "+strings.TrimSpace(secret), client); err != nil || p.Name != "alice" || !p.ReadOnly {
		t.Errorf("the CLI's token: %+v, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfgFile), "data", "users.htpasswd")); err == nil {
		t.Error("a users file was written in the data directory")
	}

	if code, _, _ := cli("", "user", "rm", "alice"); code != 0 {
		t.Error("user rm")
	}
	if _, err := svc.Authenticate("Bearer "+strings.TrimSpace(secret), client); err == nil {
		t.Error("a removed user's token still works")
	}
	if code, out, _ := cli("", "user", "list"); code != 0 || out != "bob\n" {
		t.Errorf("user list: %q", out)
	}
}

func TestMigrateNeedsADatabase(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"migrate", "--data", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "database.url") {
		t.Errorf("migrate without a database: %d %q", code, errb.String())
	}
	if code := run([]string{"migrate", "extra"}, &out, &errb); code != 2 {
		t.Errorf("migrate with an argument: %d", code)
	}
}
