// Package feed is npmgate's registry logic below the HTTP edge: a Feed
// merges its local packages with its connectors' documents, applies the
// feed's and connectors' policies, renders and indexes the result, and
// carries out writes to local packages (publish, tags, deprecate,
// unpublish, owners) with their ownership rules.
//
// A Feed is built from explicit dependencies (Deps: the memory tier, the
// disk and snapshot stores, the bucket replicas share, the local package
// documents, the users, metrics, log and cache settings) and knows
// nothing of the server that serves it: it answers in documents, tarball
// references and errors (the sentinels in errors.go), and the edge
// (package proxy) turns those into statuses and headers. It imports no
// HTTP package; internal/archtest checks that.
package feed
