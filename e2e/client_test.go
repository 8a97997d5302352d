package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientTimeout bounds one client command. The recorded tree installs in a
// few seconds; this is only there so that a hung client fails the test
// instead of the whole package.
const clientTimeout = 150 * time.Second

// deadProxy is where every non-loopback request of a client goes: nothing
// listens there, so a client that tried to reach the live registry would
// fail at once rather than reach it.
const deadProxy = "http://127.0.0.1:9"

// Tool locations under $NPMGATE_TOOLS, as `make tools` installs them.
const (
	toolYarn1 = "yarn1/node_modules/yarn/bin/yarn.js"
	toolYarn4 = "yarn4/node_modules/@yarnpkg/cli-dist/bin/yarn.js"
	toolPnpm  = "pnpm/node_modules/pnpm/bin/pnpm.cjs"
)

// toolPath returns the JavaScript entry point of a client installed by
// `make tools`, failing the test when it is missing.
func toolPath(t *testing.T, rel string) string {
	t.Helper()
	dir := os.Getenv("NPMGATE_TOOLS")
	if dir == "" {
		dir = filepath.Join(repoRoot, ".tools")
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("client tool missing: %v\nrun `make tools` (it installs yarn 1, yarn 4 and pnpm under %s), or set NPMGATE_TOOLS to a directory laid out the same way",
			err, filepath.Join(repoRoot, ".tools"))
	}
	return p
}

// onPath returns the absolute path of a program on PATH, failing the test
// when it is not there.
func onPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not on PATH (%v); the end-to-end tests need node and npm installed", name, err)
	}
	return p
}

// sandbox is an isolated client environment: its own HOME, XDG
// directories, empty npmrc files and caches, all under t.TempDir.
type sandbox struct {
	root     string
	home     string
	userrc   string // empty npmrc given as --userconfig
	globalrc string // empty npmrc given as --globalconfig
	env      []string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	root := t.TempDir()
	sb := &sandbox{root: root, home: filepath.Join(root, "home"),
		userrc: filepath.Join(root, "userrc"), globalrc: filepath.Join(root, "globalrc")}
	for _, d := range []string{sb.home, filepath.Join(sb.home, ".config"), filepath.Join(sb.home, ".cache"),
		filepath.Join(sb.home, ".local", "share"), filepath.Join(sb.home, ".local", "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{sb.userrc, sb.globalrc} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb.env = cleanEnv([]string{
		"HOME=" + sb.home,
		"XDG_CONFIG_HOME=" + filepath.Join(sb.home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(sb.home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(sb.home, ".local", "share"),
		"XDG_STATE_HOME=" + filepath.Join(sb.home, ".local", "state"),
		// Behave as in CI whatever the machine: yarn 4 and pnpm then
		// default to immutable installs, which the commands below undo.
		"CI=true",
		"npm_config_userconfig=" + sb.userrc,
		"npm_config_globalconfig=" + sb.globalrc,
		"npm_config_update_notifier=false",
		"NO_UPDATE_NOTIFIER=1",
		"YARN_ENABLE_TELEMETRY=0",
		"YARN_ENABLE_IMMUTABLE_INSTALLS=false",
		"YARN_IGNORE_PATH=1",
		"COREPACK_ENABLE_STRICT=0",
		"HTTP_PROXY=" + deadProxy, "HTTPS_PROXY=" + deadProxy,
		"http_proxy=" + deadProxy, "https_proxy=" + deadProxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	})
	return sb
}

// dir makes a fresh directory in the sandbox.
func (sb *sandbox) dir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(sb.root, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// result is what a client command did.
type result struct {
	cmd  string
	out  string
	err  error
	code int
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\n(exit %d, %v)\n--- output ---\n%s--- end ---", r.cmd, r.code, r.err, r.out)
}

// run runs a command in dir with the sandbox's environment, bounded by
// clientTimeout; the whole process group is killed on timeout.
func (sb *sandbox) run(t *testing.T, dir, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = sb.env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := result{cmd: name + " " + strings.Join(args, " "), out: out.String(), err: err, code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("timed out after %s: %w", clientTimeout, err)
	}
	t.Logf("%s %s: exit %d in %s", filepath.Base(name), strings.Join(firstArgs(args), " "), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

func firstArgs(args []string) []string {
	if len(args) > 2 {
		return args[:2]
	}
	return args
}

// mustSucceed fails the test, showing the output, unless r exited 0.
func mustSucceed(t *testing.T, r result) {
	t.Helper()
	if r.err != nil || r.code != 0 {
		t.Fatalf("command failed:\n%s", r)
	}
}

// npmIsolation are the npm flags every e2e run uses: empty user and global
// configuration, no audit or fund calls, quick retries, and every
// non-loopback address sent to a dead proxy.
func (sb *sandbox) npmIsolation() []string {
	return []string{
		"--userconfig=" + sb.userrc,
		"--globalconfig=" + sb.globalrc,
		"--no-audit", "--no-fund", "--update-notifier=false",
		"--fetch-retry-mintimeout=100", "--fetch-retry-maxtimeout=1000",
		"--proxy=" + deadProxy, "--https-proxy=" + deadProxy, "--noproxy=127.0.0.1,localhost",
	}
}

// npmArgs appends to args the registry, a fresh cache, the isolation
// flags and the log level: what every e2e npm run passes.
func (sb *sandbox) npmArgs(t *testing.T, registry, loglevel string, args []string) []string {
	t.Helper()
	cache, err := os.MkdirTemp(sb.root, "npm-cache-")
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--registry="+registry, "--cache="+cache, "--loglevel="+loglevel)
	return append(args, sb.npmIsolation()...)
}

// npm runs npm with the registry, a fresh cache, empty user and global
// configuration, and quick retries.
func (sb *sandbox) npm(t *testing.T, dir, registry string, args ...string) result {
	t.Helper()
	npm := onPath(t, "npm")
	onPath(t, "node")
	args = sb.npmArgs(t, registry, "http", args)
	return sb.run(t, dir, npm, args...)
}

// node runs a JavaScript client entry point with node.
func (sb *sandbox) node(t *testing.T, dir, script string, args ...string) result {
	t.Helper()
	return sb.run(t, dir, onPath(t, "node"), append([]string{script}, args...)...)
}

// copyProject copies the fixture project testdata/e2e/app (or src) into a
// fresh directory of the sandbox and returns it.
func (sb *sandbox) copyProject(t *testing.T, name string) string {
	t.Helper()
	dst := sb.dir(t, name)
	copyTree(t, filepath.Join(repoRoot, "testdata", "e2e", "app"), dst)
	return dst
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// removeFile deletes a file that must exist.
func removeFile(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// filesUnder lists the regular files under dir, relative to it, with '/'
// separators. A missing dir has none.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	return files
}

// writeFile writes a file of the test.
func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
