package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// quarantineDir holds the tarballs of versions upstream took down, under
// their content addresses: kept for forensics (which bytes clients were
// given), never served, counted against the disk cap and removed only by
// ClearQuarantine (npmgate gc --quarantine).
const quarantineDir = "quarantine"

// QuarantineKey is where a tarball stored at key (a TarballKey) is kept
// once its version was taken down.
func QuarantineKey(key string) string { return quarantineDir + "/" + key }

// TakedownKey is where the versions a connector took down from a package
// are recorded, beside its snapshot but apart from it: eviction, which
// removes snapshots, never removes the record.
func TakedownKey(connector, name string) string {
	return "takedowns/" + escape(connector) + "/" + escape(name) + ".json"
}

// Quarantine moves the stored tarball at key into the quarantine area. It
// reports whether there was one to move; a missing tarball (never
// downloaded, or evicted) is not an error.
func (d *Disk) Quarantine(key string) (bool, error) {
	if !strings.HasPrefix(key, "tarballs/") || !blobKeyShape(key) {
		return false, fmt.Errorf("quarantine: %q is not a tarball key", key)
	}
	dst := QuarantineKey(key)
	if err := d.root.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return false, fmt.Errorf("quarantine: %w", err)
	}
	if err := d.root.Rename(key, dst); err != nil {
		if notExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("quarantine: %w", err)
	}
	return true, d.syncDir(path.Dir(dst))
}

// QuarantineStats says what the quarantine area holds.
type QuarantineStats struct {
	Files, Bytes int64
}

// quarantined measures the quarantine area.
func (d *Disk) quarantined() (QuarantineStats, error) {
	var st QuarantineStats
	err := fs.WalkDir(d.root.FS(), quarantineDir, func(_ string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if de.Type().IsRegular() {
			if info, err := de.Info(); err == nil {
				st.Files++
				st.Bytes += info.Size()
			}
		}
		return nil
	})
	return st, err
}

// ClearQuarantine removes every quarantined tarball and says what it
// removed.
func (d *Disk) ClearQuarantine() (QuarantineStats, error) {
	st, err := d.quarantined()
	if err != nil {
		return st, err
	}
	if err := d.root.RemoveAll(quarantineDir); err != nil {
		return QuarantineStats{}, fmt.Errorf("quarantine: %w", err)
	}
	return st, nil
}

// ParseSnapshotKey is SnapshotKey read backwards: the connector and the
// package name a snapshot's key was made from, for walks over the stored
// snapshots (the background re-check).
func ParseSnapshotKey(key string) (connector, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, "snapshots/")
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	conn, file, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return "", "", false
	}
	connector, ok = unescape(conn)
	if !ok {
		return "", "", false
	}
	name, ok = unescape(file)
	if !ok || escape(name) != file || escape(connector) != conn {
		return "", "", false
	}
	return connector, name, true
}

// unescape undoes escape.
func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '!':
			if i+1 >= len(s) || s[i+1] < 'a' || s[i+1] > 'z' {
				return "", false
			}
			b.WriteByte(s[i+1] - 'a' + 'A')
			i++
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
