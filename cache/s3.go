package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 keeps objects in an S3-compatible bucket, which replicas share. It
// follows the disk tier's rules: readers see an old object or a whole new
// one (S3 makes an object visible only once its upload completed), and a
// Put that fails or is cancelled leaves nothing behind (a failed multipart
// upload is aborted).
type S3 struct {
	client   *minio.Client
	core     minio.Core // Get: one GET, its body streamed as it arrives
	bucket   string
	prefix   string // "" or the configured prefix and "/"
	endpoint string
	probe    string // Check's object key, one per process
	partSize uint64 // multipart part size: the most a Put buffers
}

const (
	// s3PartSize is the part size of multipart uploads, which a Put
	// buffers one at a time. Objects up to it of known size go in one
	// request, streamed.
	s3PartSize = 16 << 20
	// headSize is how much of an object of unknown size is read before
	// choosing: what ends within it goes in one request, the rest as a
	// multipart upload.
	headSize = 1 << 20
	// probePrefix holds Check's objects; Walk does not report them.
	probePrefix = ".probe/"
)

// S3Options say which bucket OpenS3 opens and how. They are the storage.s3
// section of the configuration, which the caller converts: the tiers know
// nothing of the configuration file.
type S3Options struct {
	// Endpoint is the server's URL, e.g. http://minio:9000.
	Endpoint  string
	Region    string // default us-east-1
	Bucket    string
	Prefix    string // put before every key, followed by "/"
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket in the path; virtual-host style
	// otherwise.
	PathStyle bool
}

// OpenS3 connects to the bucket described by cfg (validated by config:
// Region set, Prefix without surrounding slashes) and checks that it
// exists; it does not create it. Without an access key and secret key
// the standard AWS chain is used: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN; the shared credentials file (AWS_PROFILE,
// AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials); then the instance or
// pod role (IAM, web identity).
func OpenS3(ctx context.Context, cfg S3Options) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %s: %w", cfg.Endpoint, err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	s := &S3{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   cfg.Bucket,
		endpoint: cfg.Endpoint,
		probe:    probePrefix + hex.EncodeToString(b),
		partSize: s3PartSize,
	}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %q at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3: bucket %q does not exist at %s (npmgate does not create it)", cfg.Bucket, cfg.Endpoint)
	}
	return s, nil
}

// String names the bucket, for logs.
func (s *S3) String() string {
	return "s3://" + s.bucket + "/" + s.prefix + " at " + s.endpoint
}

func (s *S3) object(key string) string { return s.prefix + key }

// fail maps a missing object to ErrNotFound and names the key in other
// errors.
func (s *S3) fail(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if r := minio.ToErrorResponse(err); r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket {
		return ErrNotFound
	}
	return fmt.Errorf("s3 %s %s: %w", op, key, err)
}

// Get opens key with one GET and streams its body.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, s.fail("get", key, err)
	}
	return body, s3Info(key, oi), nil
}

// Put uploads what r yields. An object of known size up to the part size
// is streamed in one request; a larger one, or one of unknown size past
// its first MiB, goes as a multipart upload that buffers one part at a
// time and is aborted if anything fails.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	pr := &putReader{ctx: ctx, r: r, size: size, key: key}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: s.partSize}
	if size == 0 {
		// Nothing may be read by the upload itself: check here that r
		// is empty.
		if _, err := pr.Read(nil); err != io.EOF {
			return err
		}
	}
	body := io.Reader(pr)
	if size < 0 {
		var head bytes.Buffer
		n, err := io.CopyN(&head, pr, headSize)
		switch err {
		case io.EOF:
			// The whole object: one request, retried if need be.
			body, size = bytes.NewReader(head.Bytes()), n
		case nil:
			body = io.MultiReader(&head, pr)
		default:
			return err
		}
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.object(key), body, size, opts)
	if err != nil {
		// The reader's own error, when it has one, says more than
		// the HTTP client's report of a failed request body.
		if pr.err != nil && pr.err != io.EOF {
			return pr.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cache: %s: %w", key, ctx.Err())
		}
		return s.fail("put", key, err)
	}
	return nil
}

// putReader is what an upload reads: it stops once ctx ends, holds a
// reader to its declared size (an error, never a clean end, when it
// yields fewer or more bytes), and reports the reader's errors as errors
// of their own. The S3 client takes io.ErrUnexpectedEOF for the end of
// the data, so a truncated download passed on as is would be stored as a
// short object.
type putReader struct {
	ctx  context.Context
	r    io.Reader
	size int64 // -1 when unknown
	n    int64
	key  string
	err  error // once set, every Read returns it
}

func (p *putReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if err := p.ctx.Err(); err != nil {
		p.err = fmt.Errorf("cache: %s: %w", p.key, err)
		return 0, p.err
	}
	if p.size >= 0 {
		if p.n == p.size {
			p.err = p.atEnd()
			return 0, p.err
		}
		if rest := p.size - p.n; int64(len(b)) > rest {
			b = b[:rest]
		}
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	switch {
	case err == io.EOF && p.size >= 0 && p.n < p.size:
		p.err = fmt.Errorf("cache: %s: got %d bytes, expected %d", p.key, p.n, p.size)
	case err == io.EOF:
		p.err = p.end()
		if p.err == io.EOF {
			return n, io.EOF
		}
	case err != nil:
		p.err = fmt.Errorf("cache: %s: reading: %w", p.key, err)
	case p.size >= 0 && p.n == p.size:
		// The declared size is reached: the upload may stop reading
		// here and complete, so make sure now that nothing follows.
		if p.err = p.atEnd(); p.err == io.EOF {
			if p.err = p.end(); p.err == io.EOF {
				return n, nil
			}
		}
	default:
		return n, nil
	}
	return 0, p.err
}

// end is io.EOF, or the context's error if it ended while the reader was
// read: a Put cancelled then must fail even if it could complete.
func (p *putReader) end() error {
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("cache: %s: %w", p.key, err)
	}
	return io.EOF
}

// atEnd checks that the reader has nothing past the declared size: io.EOF
// if so, an error if not.
func (p *putReader) atEnd() error {
	var one [1]byte
	for range 100 {
		n, err := p.r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("cache: %s: more than the expected %d bytes", p.key, p.size)
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("cache: %s: reading: %w", p.key, err)
		}
	}
	return fmt.Errorf("cache: %s: reading: %w", p.key, io.ErrNoProgress)
}

// Stat describes key.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, s.object(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.fail("stat", key, err)
	}
	return s3Info(key, oi), nil
}

// touchedMeta is the user metadata (x-amz-meta-touched) where Touch
// records when it ran.
const touchedMeta = "Touched"

// Touch marks key as written now by copying the object onto itself in the
// server with its metadata replaced (S3 refuses a copy that changes
// nothing), which gives it a new LastModified on AWS S3 and MinIO. Some
// servers (Versity Gateway) only rewrite the metadata in place and keep
// LastModified, so the time is also kept in the metadata, and Get and
// Stat report the later of the two; Walk, which sees only LastModified,
// may report the time of the last Put there. Objects above 5 GiB cannot
// be copied so.
func (s *S3) Touch(ctx context.Context, key string) error {
	name := s.object(key)
	_, err := s.client.CopyObject(ctx, minio.CopyDestOptions{
		Bucket:          s.bucket,
		Object:          name,
		ReplaceMetadata: true,
		UserMetadata:    map[string]string{touchedMeta: time.Now().UTC().Format(time.RFC3339Nano)},
		ContentType:     "application/octet-stream",
	}, minio.CopySrcOptions{Bucket: s.bucket, Object: name})
	return s.fail("touch", key, err)
}

// s3Info describes an object from a GET or HEAD response.
func s3Info(key string, oi minio.ObjectInfo) Info {
	mod := oi.LastModified
	if t, err := time.Parse(time.RFC3339Nano, oi.UserMetadata[touchedMeta]); err == nil && t.After(mod) {
		mod = t
	}
	return Info{Key: key, Size: oi.Size, ModTime: mod}
}

// Remove deletes key; a missing key is not an error (S3 does not report
// one).
func (s *S3) Remove(ctx context.Context, key string) error {
	err := s.fail("remove", key, s.client.RemoveObject(ctx, s.bucket, s.object(key), minio.RemoveObjectOptions{}))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Walk lists the objects whose key starts with prefix, Check's probes
// left out.
func (s *S3) Walk(ctx context.Context, prefix string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.object(prefix), Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("s3 list %s: %w", prefix, oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if strings.HasPrefix(key, probePrefix) || strings.HasSuffix(key, "/") {
			continue
		}
		if err := fn(Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Check writes and removes a small object within five seconds, for
// readiness probes.
func (s *S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Put(ctx, s.probe, strings.NewReader("ok"), 2); err != nil {
		return err
	}
	return s.Remove(ctx, s.probe)
}
