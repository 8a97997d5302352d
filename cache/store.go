package cache

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Store keeps objects by key: the disk tier and an S3 bucket are both one,
// and one conformance suite (cache/storetest) runs against each. Keys are
// slash-separated paths built by TarballKey and SnapshotKey.
type Store interface {
	// Get opens key's bytes for reading; ErrNotFound when it has none.
	// The reader streams: nothing is read into memory ahead of the caller.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Put stores what r yields under key. Readers see the old object or
	// the whole new one, never a part, and a Put that fails or is
	// cancelled leaves nothing behind. size is -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Stat describes key; ErrNotFound when it has none.
	Stat(ctx context.Context, key string) (Info, error)
	// Touch marks key as written now (its ModTime): a snapshot that
	// upstream confirmed unchanged is fresh again.
	Touch(ctx context.Context, key string) error
	// Remove deletes key; a missing key is not an error.
	Remove(ctx context.Context, key string) error
	// Walk calls fn for every object whose key starts with prefix, in no
	// particular order; an error from fn stops the walk and is returned.
	Walk(ctx context.Context, prefix string, fn func(Info) error) error
	// Check reports whether the store can take a write now, for
	// readiness probes.
	Check(ctx context.Context) error
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// SnapshotMeta is what is kept with an upstream document to revalidate it.
type SnapshotMeta struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// WriteSnapshot stores a document with its metadata in one object: a JSON
// header line, then the body, so both change together.
func WriteSnapshot(ctx context.Context, st Store, key string, meta SnapshotMeta, body []byte) error {
	hdr, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	hdr = append(hdr, '\n')
	return st.Put(ctx, key, io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(body)), int64(len(hdr)+len(body)))
}

// ReadSnapshot returns a stored document, its metadata and when it was
// last confirmed by upstream (the object's modification time).
func ReadSnapshot(ctx context.Context, st Store, key string) (body []byte, meta SnapshotMeta, fetched time.Time, err error) {
	r, info, err := st.Get(ctx, key)
	if err != nil {
		return nil, meta, fetched, err
	}
	defer r.Close()
	data := make([]byte, 0, max(info.Size, 0))
	buf := bytes.NewBuffer(data)
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, meta, fetched, err
	}
	data = buf.Bytes()
	i := bytes.IndexByte(data, '\n')
	if i < 0 || json.Unmarshal(data[:i], &meta) != nil {
		return nil, meta, fetched, fmt.Errorf("snapshot %s: bad header", key)
	}
	return data[i+1:], meta, info.ModTime, nil
}

// SnapshotInfo reads only a snapshot's metadata.
func SnapshotInfo(ctx context.Context, st Store, key string) (meta SnapshotMeta, fetched time.Time, err error) {
	r, info, err := st.Get(ctx, key)
	if err != nil {
		return meta, fetched, err
	}
	defer r.Close()
	line, err := bufio.NewReaderSize(r, 1024).ReadSlice('\n')
	if err != nil || json.Unmarshal(line, &meta) != nil {
		return meta, fetched, fmt.Errorf("snapshot %s: bad header", key)
	}
	return meta, info.ModTime, nil
}
