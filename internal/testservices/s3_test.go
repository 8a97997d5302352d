package testservices

import (
	"context"
	"io"
	"strings"
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
