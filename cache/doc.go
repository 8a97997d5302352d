// Package cache is where npmgate's bytes live: a memory tier of rendered
// documents (ristretto, bounded in bytes) and a disk tier of tarballs and
// upstream snapshots written atomically. It knows nothing of HTTP or npm.
//
// # Tiers
//
// Tarballs go through Blobs, one interface whatever the deployment:
// Local is the disk with its downloads (Fills); Tiered puts the disk in
// front of the bucket replicas share (a miss is read from the bucket,
// then from upstream, verified either way on its way to disk, and a
// tarball verified from upstream is uploaded to the bucket once, in the
// background). Snapshots and other documents go through a Store: the
// Disk, the S3 bucket, or the bucket behind an AsyncStore, whose Put
// returns at once and whose reads see the writes not landed yet.
//
// # Coalescing: one mechanism per resource
//
// Concurrent requests for one resource cost one piece of work upstream.
// Each resource has exactly one mechanism that does this:
//
//   - Package documents (packuments, package indexes, renderings): the
//     feed's flight group (singleflight, keyed by feed, policy, name and
//     representation). It lives with the feeds, not here: only they know
//     the keys.
//   - Tarballs: Fills, keyed by content (TarballKey). One download per
//     key; every caller reads the one growing file through a descriptor
//     the download hands it (Pending.Reader), never by its path, and no
//     caller receives the last byte before the digest matched. Blobs.Open
//     is the only way feeds reach it.
//   - A tarball whose document is not known yet: the feeds' prefetch
//     starts the download early, keyed by URL; it is not a second
//     mechanism but the Source of the fill that follows, which verifies
//     its bytes like any others and coalesces the callers.
//   - Uploads to the bucket: none needed. A Tiered store queues one upload
//     per verified fill, so one per download; snapshot writes through an
//     AsyncStore are per key, a later Put superseding one not yet
//     written.
package cache
