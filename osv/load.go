package osv

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads a database from path: a zip as OSV publishes one per
// ecosystem (npm/all.zip), a directory of .json records (searched
// recursively, as the advisory repositories lay them out), or one .json
// record.
func Load(path string, lim Limits) (*DB, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case info.IsDir():
		return LoadDir(path, lim)
	case strings.HasSuffix(strings.ToLower(path), ".json"):
		b := newBuilder(lim)
		data, err := readBounded(path, b.lim.RecordBytes)
		if err != nil {
			return nil, err
		}
		if err := b.add(data); err != nil {
			return nil, err
		}
		return b.db()
	default:
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return ReadZip(f, info.Size(), lim)
	}
}

// ReadZip reads a zip export. It is bounded before it inflates anything
// (entries, declared sizes) and while it does (bytes counted as they are
// inflated, against the record, total and ratio bounds), since an
// entry's header can lie about its size.
func ReadZip(r io.ReaderAt, size int64, lim Limits) (*DB, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("osv: not a zip: %w", err)
	}
	b := newBuilder(lim)
	if len(zr.File) > b.lim.Entries {
		return nil, fmt.Errorf("%w: %d entries", ErrTooMany, len(zr.File))
	}
	var buf bytes.Buffer
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(f.Name), ".json") {
			continue
		}
		if f.UncompressedSize64 > uint64(b.lim.RecordBytes) {
			b.stats.TooLarge++
			continue
		}
		big, err := inflate(f, &buf, b.lim)
		if err != nil {
			return nil, err
		}
		if big {
			b.stats.TooLarge++
			continue
		}
		if b.stats.Bytes+int64(buf.Len()) > b.lim.TotalBytes {
			return nil, ErrTooBig
		}
		if err := b.add(buf.Bytes()); err != nil {
			return nil, err
		}
	}
	return b.db()
}

// inflate reads one entry into buf, at most lim.RecordBytes of it (big
// when there was more), and fails on a ratio no JSON has.
func inflate(f *zip.File, buf *bytes.Buffer, lim Limits) (big bool, err error) {
	rc, err := f.Open()
	if err != nil {
		return false, fmt.Errorf("osv: zip entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(rc, lim.RecordBytes+1))
	if err != nil {
		return false, fmt.Errorf("osv: zip entry %q: %w", f.Name, err)
	}
	if n > 64<<10 && n > lim.Ratio*int64(max(f.CompressedSize64, 1)) {
		return false, fmt.Errorf("%w: %q", ErrZipBomb, f.Name)
	}
	return n > lim.RecordBytes, nil
}

// walkRecords calls fn with every record file below dir (.json, regular),
// at most limit of them: past that it fails with ErrTooMany.
func walkRecords(dir string, limit int, fn func(path string, d fs.DirEntry) error) error {
	files := 0
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(strings.ToLower(d.Name()), ".json") || !d.Type().IsRegular() {
			return nil
		}
		if files++; files > limit {
			return fmt.Errorf("%w: more than %d files", ErrTooMany, limit)
		}
		return fn(path, d)
	})
}

// DirStamp is a digest of the names, sizes and modification times of the
// files LoadDir would read below dir: when it is unchanged, so is the
// database, and a refresh need not load it (and make every document be
// rendered again). A directory's own time does not move when a file in
// it is edited, hence every file's. At most lim.Entries files are looked
// at, as LoadDir reads.
func DirStamp(dir string, lim Limits) (string, error) {
	h := sha256.New()
	err := walkRecords(dir, lim.withDefaults().Entries, func(path string, d fs.DirEntry) error {
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// LoadDir reads every .json file below dir.
func LoadDir(dir string, lim Limits) (*DB, error) {
	b := newBuilder(lim)
	err := walkRecords(dir, b.lim.Entries, func(path string, _ fs.DirEntry) error {
		data, err := readBounded(path, b.lim.RecordBytes)
		if errors.Is(err, ErrTooLarge) {
			b.stats.TooLarge++
			return nil
		}
		if err != nil {
			return err
		}
		if b.stats.Bytes+int64(len(data)) > b.lim.TotalBytes {
			return ErrTooBig
		}
		return b.add(data)
	})
	if err != nil {
		return nil, err
	}
	return b.db()
}

// readBounded reads a file of at most limit bytes, counting what it reads
// rather than trusting the size the file system reports.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, ErrTooLarge
	}
	return data, nil
}
