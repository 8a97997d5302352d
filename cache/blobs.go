package cache

import (
	"context"
	"fmt"
	"io"
)

// Origin says where the bytes of an opened tarball come from.
type Origin uint8

const (
	// FromDisk: the file stored on this replica's disk.
	FromDisk Origin = iota
	// FromBucket: a download from the bucket replicas share.
	FromBucket
	// FromUpstream: a download from the Source (a connector, a prefetch).
	FromUpstream
)

func (o Origin) String() string {
	switch o {
	case FromDisk:
		return "disk"
	case FromBucket:
		return "bucket"
	case FromUpstream:
		return "upstream"
	}
	return "unknown"
}

// Blob is an opened tarball. Body is the stored *os.File (sent by
// sendfile) when Origin is FromDisk, else a reader following a download
// that returns its error instead of io.EOF and holds back the last byte
// until the bytes are verified (see Fills.Fetch). Size is -1 when unknown.
type Blob struct {
	Body   io.ReadCloser
	Size   int64
	Origin Origin
}

// Miss is what Open does when a tarball is not stored.
type Miss struct {
	// Expect is what the bytes must hash to; nothing else is stored.
	Expect Expect
	// Source downloads the tarball from upstream. Nil for a tarball that
	// must be stored already (a package published here): then a miss is
	// an error matching ErrNotFound, unless the bucket has it.
	Source Source
	// Upstream says the bytes are on their way from upstream already (a
	// prefetch feeds Source): the bucket is not worth a look.
	Upstream bool
	// OnDone, if not nil, is called once with the result of a download
	// this Open started (after the bytes are stored, or discarded).
	OnDone func(error)
}

// Blobs is where feeds open and keep tarballs, by content key (TarballKey):
// the one interface whether or not replicas share a bucket. Local is this
// replica's disk alone; Tiered puts it in front of the shared bucket.
type Blobs interface {
	// Open returns key's verified bytes: the stored file, else a download
	// (one per key, however many callers: Fills) verified against
	// miss.Expect before it is stored, ErrIntegrity when it fails. ctx
	// bounds only the wait for the first byte; the download itself runs
	// to its own deadline.
	Open(ctx context.Context, key string, miss Miss) (Blob, error)
	// Put stores a published tarball's bytes, already verified by the
	// caller: in the bucket first when there is one (once a document names
	// a version every replica must find its bytes), then on disk. Bytes
	// already stored on disk are not written again.
	Put(ctx context.Context, key string, data []byte) error
	// Stat describes a stored tarball; ErrNotFound when none is.
	Stat(ctx context.Context, key string) (Info, error)
	// Close waits for background work (uploads) to end.
	Close() error
}

// errLocalMissing is the error of a tarball that must be stored and is not.
func errLocalMissing(err error) error {
	return fmt.Errorf("stored tarball of a local package is missing: %w", err)
}

// Local is the disk tier with its downloads: what a replica that shares
// no bucket uses.
type Local struct {
	disk  *Disk
	fills *Fills
}

// NewLocal serves tarballs from disk, downloading misses through fills
// (which must write into the same disk).
func NewLocal(disk *Disk, fills *Fills) *Local { return &Local{disk: disk, fills: fills} }

// Open implements Blobs.
func (l *Local) Open(ctx context.Context, key string, miss Miss) (Blob, error) {
	if miss.Source == nil {
		f, size, err := l.disk.OpenBlob(key)
		if err != nil {
			return Blob{}, errLocalMissing(err)
		}
		return Blob{Body: f, Size: size, Origin: FromDisk}, nil
	}
	if b, ok := l.fills.stored(key); ok {
		return b, nil
	}
	return l.fills.join(ctx, key, miss.Expect, upstream(miss.Source), doneFunc(miss.OnDone, nil))
}

// doneFunc calls onDone with a download's error, then after, if not nil,
// with its origin.
func doneFunc(onDone func(error), after func(Origin, error)) func(Origin, error) {
	if onDone == nil && after == nil {
		return nil
	}
	return func(o Origin, err error) {
		if onDone != nil {
			onDone(err)
		}
		if after != nil {
			after(o, err)
		}
	}
}

// Put implements Blobs.
func (l *Local) Put(ctx context.Context, key string, data []byte) error {
	if _, err := l.disk.Stat(ctx, key); err == nil {
		return nil // the same bytes are already stored
	}
	w, err := l.disk.Create(key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// Stat implements Blobs.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	return l.disk.Stat(ctx, key)
}

// Close implements Blobs: Local has no background work.
func (l *Local) Close() error { return nil }
