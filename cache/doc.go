// Package cache is where npmgate's bytes live: the memory tier of
// rendered documents (Memory: ristretto, bounded in bytes), the disk tier
// of tarballs and upstream snapshots written atomically (Disk), an S3
// bucket replicas share (S3), all but the first behind one Store
// interface (cache/storetest is its conformance suite), and tarballs
// behind Blobs. It knows nothing of HTTP or npm.
//
// The tiers are decorators, as in distribution's proxy blob store: Local
// is the disk with its fills; Tiered puts Local in front of the bucket
// (looked at before upstream, written after a verified download);
// AsyncStore puts a Store behind writes the caller does not wait for
// (snapshots to the bucket). The feeds see Blobs and Store only, never
// whether a bucket is configured.
//
// Concurrent work is coalesced once per resource:
//   - a package's index and each rendered document: the feed's flight
//     group (feed.coalesce), one load per key;
//   - a tarball: Fills, one download per key, every reader following the
//     same file as it grows (through Pending.Follow: a duplicate of the
//     writer's descriptor, never a path);
//   - a prefetch (feed.Speculate) only starts a tarball's download before
//     its packument is known; the fill joins it rather than downloading
//     again.
package cache
