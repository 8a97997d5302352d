package testservices

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// s3Proc is Versity Gateway in a temporary directory (the posix backend's
// root, the log).
type s3Proc struct {
	*proc
	access string
	secret string
}

const (
	s3Region      = "us-east-1"
	versitygwName = "versitygw"
)

var s3p shared[*s3Proc]

// S3 returns a new, empty bucket, with a random name, on an S3-compatible
// server started once per test process. The bucket's files are removed
// when the test ends.
//
// Without versitygw installed (make services installs it) the test is
// skipped, or fails when NPMGATE_REQUIRE_SERVICES=1.
func S3(t testing.TB) S3Server {
	t.Helper()
	p, err := s3p.get(startS3)
	if err != nil {
		unavailable(t, "S3 server", "make services installs it", err)
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
	p, ok := s3p.take("stopped by StopS3")
	if !ok {
		return
	}
	p.end(syscall.SIGTERM, 5*time.Second)
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
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".tools", "bin", versitygwName)
				if isExecutable(p) {
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
	return "", fmt.Errorf("%s: %w (looked in %s)", versitygwName, errMissing, strings.Join(tried, ", "))
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
		proc:   newProc(dir),
		access: "npmgate" + hex.EncodeToString(key[:6]),
		secret: hex.EncodeToString(key),
	}
	if err := p.onFreePort(func() error { return p.start(bin) }); err != nil {
		p.end(syscall.SIGKILL, 0)
		return nil, err
	}
	return p, nil
}

// start runs versitygw, to be killed when the test process dies, and
// waits until it answers S3 requests.
func (p *s3Proc) start(bin string) error {
	cmd := exec.Command(bin,
		"--access", p.access,
		"--secret", p.secret,
		"--region", s3Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", p.port),
		"--quiet",
		"posix", filepath.Join(p.dir, "root"))
	cmd.Env = s3Env()
	c := p.client()
	return p.launch("versitygw", cmd, syscall.SIGKILL, filepath.Join(p.dir, "versitygw.log"), 30*time.Second, func(ctx context.Context) error {
		_, err := c.ListBuckets(ctx)
		return err
	})
}
