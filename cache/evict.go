package cache

import (
	"io/fs"
	"path"
	"sort"
	"syscall"
	"time"
)

// EvictStats says what an eviction pass saw and removed.
type EvictStats struct {
	Files, Bytes           int64 // cached files and bytes before
	Removed, RemovedBytes  int64
	Protected, ProtectedBy int64 // files kept because protected, and their bytes
	// Quarantined are the taken-down tarballs kept for forensics: counted
	// against the cap, never evicted (see Disk.Quarantine).
	Quarantined, QuarantinedBytes int64
}

// Evict removes the least recently used cached files (tarballs and
// upstream snapshots) until at most target bytes remain, once more than
// maxBytes are stored. protected keys (the tarballs of published
// packages) are never removed; nothing under local/ is ever considered.
// Quarantined tarballs count towards maxBytes but are never removed here.
func (d *Disk) Evict(maxBytes, target int64, protected func(key string) bool) (EvictStats, error) {
	type entry struct {
		key  string
		size int64
		used time.Time
	}
	var st EvictStats
	var entries []entry
	for _, dir := range []string{"tarballs", "snapshots"} {
		err := fs.WalkDir(d.root.FS(), dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return nil
			}
			info, err := de.Info()
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			if protected != nil && protected(p) {
				st.Protected++
				st.ProtectedBy += info.Size()
				return nil
			}
			used := info.ModTime()
			if sys, ok := info.Sys().(*syscall.Stat_t); ok {
				if at := time.Unix(sys.Atim.Sec, sys.Atim.Nsec); at.After(used) {
					used = at
				}
			}
			entries = append(entries, entry{p, info.Size(), used})
			st.Files++
			st.Bytes += info.Size()
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	q, err := d.quarantined()
	if err != nil {
		return st, err
	}
	st.Quarantined, st.QuarantinedBytes = q.Files, q.Bytes
	total := st.Bytes + st.ProtectedBy + st.QuarantinedBytes
	if total <= maxBytes {
		return st, nil
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if total <= target {
			break
		}
		if err := d.root.Remove(path.Clean(e.key)); err != nil {
			continue
		}
		total -= e.size
		st.Removed++
		st.RemovedBytes += e.size
	}
	return st, nil
}
