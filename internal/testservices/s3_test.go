package testservices

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestS3GivesFreshBuckets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := S3(t), S3(t)
	if a.Bucket == b.Bucket || a.Endpoint != b.Endpoint || !strings.HasPrefix(a.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("servers %+v and %+v", a, b)
	}
	c, err := minio.New(strings.TrimPrefix(a.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(a.AccessKey, a.SecretKey, ""),
		Region:       a.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, a.Bucket, "x/y", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, a.Bucket, "x/y", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	for o := range c.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("the second bucket is not empty: %q %v", o.Key, o.Err)
	}
	bad, _ := minio.New(strings.TrimPrefix(a.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(a.AccessKey, "wrong", ""),
		Region:       a.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if _, err := bad.BucketExists(ctx, a.Bucket); err == nil {
		t.Error("the server accepts a wrong secret key")
	}
}

// childEnv makes TestS3Child start a server in a test process of its own,
// for TestS3EndsWithTestProcess to watch.
const childEnv = "NPMGATE_TESTSERVICES_S3_CHILD"

func TestS3Child(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run by TestS3EndsWithTestProcess")
	}
	S3(t)
	fmt.Printf("versitygw pid=%d dir=%s\n", s3p.cmd.Process.Pid, s3p.dir)
	switch mode {
	case "stop":
		StopS3()
	case "crash":
		time.Sleep(time.Minute) // until the parent kills this process
	}
}

// TestS3EndsWithTestProcess checks that the server goes when StopS3 is
// called, and when the test process is killed before it could be.
func TestS3EndsWithTestProcess(t *testing.T) {
	if _, err := versitygwPath(); err != nil {
		if os.Getenv(s3RequireEnv) != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	for _, mode := range []string{"stop", "crash"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestS3Child$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+mode)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid, dir := 0, ""
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "versitygw pid="); ok {
					p, d, _ := strings.Cut(rest, " dir=")
					pid, _ = strconv.Atoi(p)
					dir = d
					break
				}
			}
			if mode == "crash" {
				cmd.Process.Kill()
			}
			go io.Copy(io.Discard, out)
			err = cmd.Wait()
			if pid == 0 {
				t.Fatalf("the child printed no pid (exit: %v)", err)
			}
			if mode == "crash" {
				defer os.RemoveAll(dir) // nobody else will
			}
			if !gone(pid, 10*time.Second) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("versitygw (pid %d) outlived its test process (%s)", pid, mode)
			}
			if _, err := os.Stat(dir); mode == "stop" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("StopS3 left %s: %v", dir, err)
			}
		})
	}
}

// gone waits for a process to end: no longer in /proc, or a zombie that
// nobody reaped yet.
func gone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return true
		}
		// pid (comm) S ...: the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
