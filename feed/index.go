package feed

import (
	"fmt"
	"time"

	"github.com/npmgate/npmgate/proxy/npm"
)

// Flags on memory-tier items.
const FlagStale uint32 = 1

// Index is what npmgate remembers of a package between requests: which
// tarball files exist and what they must hash to. It holds no document
// bytes, so it stays small even for a 10 MB packument.
type Index struct {
	notFound bool
	stale    bool
	loaded   time.Time
	expires  time.Time
	// fingerprint changes whenever any connector's document changes; a
	// rendered document made from the same fingerprint is still right.
	fingerprint uint64
	files       map[string]TarballRef
	// notice says what the feed's policy hid (the npm-notice header).
	notice string
	// blockedName is why the policy refuses the whole name, when it does.
	blockedName string
}

// TarballRef locates one tarball upstream and says what it must hash to.
type TarballRef struct {
	File       string // upstream's file name
	version    string
	Digest     npm.Digest
	Source     int // index into the feed's connectors
	Advertised string
	// blocked is why a policy hid this version; its tarball is refused.
	blocked string
	// removed says when upstream took this version down; its tarball is
	// never served again (404).
	removed string
}

// removedVersion is a version a connector took down, as the index keeps
// it.
type removedVersion struct{ Takedown }

func (ix *Index) cost() int64 {
	return int64(len(ix.files)) * 200
}

// indexFiles maps every tarball file of the merged document, and of the
// versions a policy hid (refused, saying why), to what it must hash to.
//
// The versions connectors took down are mapped too, to say so; a version
// another connector still lists is served from that one.
func indexFiles(name string, doc *npm.Packument, blocked []blockedVersion, removed []removedVersion) map[string]TarballRef {
	files := make(map[string]TarballRef, len(doc.Versions)+len(blocked)+len(removed))
	for _, r := range removed {
		ref := TarballRef{File: r.File, version: r.Version, removed: r.message(name)}
		if r.File != "" {
			files[r.File] = ref
		}
		files[npm.TarballFile(name, r.Version)] = ref
	}
	for _, b := range blocked {
		if dg, err := npm.ParseDigest(b.v.Dist); err == nil {
			ref := TarballRef{File: b.v.File, version: b.v.Version, Digest: dg, Source: b.v.Source, blocked: b.decision.Reason}
			files[b.v.File] = ref
			files[npm.TarballFile(name, b.v.Version)] = ref
		}
	}
	for file, v := range doc.Files() {
		dg, err := npm.ParseDigest(v.Dist)
		if err != nil {
			continue // no hash to check: such a tarball is never served
		}
		files[file] = TarballRef{File: v.File, version: v.Version, Digest: dg, Source: v.Source, Advertised: v.Dist.Tarball}
	}
	return files
}

// notFoundError says why a package is absent: a policy refusing its name,
// or nobody having it.
func (ix *Index) notFoundError(name, feed string) error {
	if ix.blockedName != "" {
		return fmt.Errorf("%w: %s", ErrNotFound, ix.blockedName)
	}
	return fmt.Errorf("%w: package %q is not in feed %q or its connectors", ErrNotFound, name, feed)
}
