package testservices

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Server is a bucket on a real S3-compatible server (Versity Gateway)
// listening on 127.0.0.1, reached with path-style addressing.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // created empty for the caller
}

type s3Proc struct {
	dir    string // temporary directory: the posix backend's root, the log
	port   int
	access string
	secret string
	cmd    *exec.Cmd
	exited chan struct{} // closed when versitygw has ended
	stop   chan struct{} // closed by StopS3: the starting goroutine may end
}

const (
	s3Region      = "us-east-1"
	s3RequireEnv  = "NPMGATE_REQUIRE_SERVICES"
	versitygwName = "versitygw"
)

var errS3Missing = errors.New("not installed")

var (
	s3Once sync.Once
	s3p    *s3Proc
	s3Err  error
	s3Mu   sync.Mutex // guards stopping
)

// S3 returns a new, empty bucket, with a random name, on an S3-compatible
// server started once per test process. The bucket's files are removed
// when the test ends.
//
// Without versitygw installed (make services installs it) the test is
// skipped, or fails when NPMGATE_REQUIRE_SERVICES=1.
func S3(t testing.TB) S3Server {
	t.Helper()
	s3Once.Do(func() { s3p, s3Err = startS3() })
	s3Mu.Lock()
	p, err := s3p, s3Err
	s3Mu.Unlock()
	if err != nil {
		if errors.Is(err, errS3Missing) && os.Getenv(s3RequireEnv) != "1" {
			t.Skipf("S3 server is not available: %v (make services installs it; set %s=1 to fail instead of skipping)", err, s3RequireEnv)
		}
		t.Fatalf("S3 server: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	s := S3Server{
		Endpoint:  p.endpoint(),
		AccessKey: p.access,
		SecretKey: p.secret,
		Region:    s3Region,
		Bucket:    "test-" + hex.EncodeToString(b),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.client().MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s3Region}); err != nil {
		t.Fatalf("S3 server: create bucket: %v", err)
	}
	t.Cleanup(func() {
		// The posix backend keeps a bucket as a directory: removing it
		// is quicker than deleting every object through the API.
		os.RemoveAll(filepath.Join(p.dir, "root", s.Bucket))
	})
	return s
}

// StopS3 stops the S3 server this process started, if any, and removes
// its files. Call it from TestMain after m.Run.
func StopS3() {
	s3Mu.Lock()
	defer s3Mu.Unlock()
	if s3p == nil {
		return
	}
	p := s3p
	s3p, s3Err = nil, errors.New("stopped by StopS3")
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	close(p.stop)
	os.RemoveAll(p.dir)
}

func (p *s3Proc) endpoint() string {
	return fmt.Sprintf("http://127.0.0.1:%d", p.port)
}

func (p *s3Proc) client() *minio.Client {
	c, err := minio.New(fmt.Sprintf("127.0.0.1:%d", p.port), &minio.Options{
		Creds:        credentials.NewStaticV4(p.access, p.secret, ""),
		Region:       s3Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		panic(err) // only for a malformed endpoint, which this is not
	}
	return c
}

// versitygwPath finds the binary: $NPMGATE_TOOLS/bin, the repository's
// .tools/bin (the directory holding go.mod, found upwards from the working
// directory), then $PATH.
func versitygwPath() (string, error) {
	var tried []string
	if dir := os.Getenv("NPMGATE_TOOLS"); dir != "" {
		p := filepath.Join(dir, "bin", versitygwName)
		if execFile(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".tools", "bin", versitygwName)
				if execFile(p) {
					return p, nil
				}
				tried = append(tried, p)
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if p, err := exec.LookPath(versitygwName); err == nil {
		return p, nil
	}
	tried = append(tried, "$PATH")
	return "", fmt.Errorf("%s: %w (looked in %s)", versitygwName, errS3Missing, strings.Join(tried, ", "))
}

func execFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// s3Env is the environment without the gateway's own variables, which
// would change how it runs (TLS, virtual hosts, IAM, another root user).
func s3Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") {
			env = append(env, kv)
		}
	}
	return env
}

func startS3() (*s3Proc, error) {
	bin, err := versitygwPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "npmgate-s3-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	key := make([]byte, 20)
	rand.Read(key)
	p := &s3Proc{
		dir:    dir,
		access: "npmgate" + hex.EncodeToString(key[:6]),
		secret: hex.EncodeToString(key),
		exited: make(chan struct{}),
		stop:   make(chan struct{}),
	}
	// The port is free when asked, and may be taken before the gateway
	// binds it: then it exits, and another port is tried.
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		p.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		err = p.start(bin)
		if err == nil {
			return p, nil
		}
		close(p.stop)
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
		p.cmd = nil
		p.exited = make(chan struct{})
		p.stop = make(chan struct{})
	}
}

// start runs versitygw and waits until it answers S3 requests. The process
// is started from a goroutine locked to its OS thread, which then stays
// alive until StopS3: the parent-death signal follows the thread that
// started the child, so the gateway is killed when the test process dies,
// not when some thread of it happens to exit.
func (p *s3Proc) start(bin string) error {
	logPath := filepath.Join(p.dir, "versitygw.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin,
		"--access", p.access,
		"--secret", p.secret,
		"--region", s3Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", p.port),
		"--quiet",
		"posix", filepath.Join(p.dir, "root"))
	cmd.Dir, cmd.Env = p.dir, s3Env()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	exited, stop := p.exited, p.stop
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with the goroutine, after
		// the gateway has.
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
		<-stop
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("versitygw: %w", err)
	}
	p.cmd = cmd

	c := p.client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited on start (port %d); its log:\n%s", p.port, s3LogTail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("versitygw did not answer within 30s: %v; its log:\n%s", err, s3LogTail(logPath))
		}
	}
}

// s3LogTail is the end of the gateway's log, for error messages.
func s3LogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
