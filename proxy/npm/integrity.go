package npm

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
)

// ErrNoIntegrity is returned for a version whose metadata carries no hash
// npmgate can check its tarball against.
var ErrNoIntegrity = errors.New("no usable integrity hash")

// Digest is an expected tarball hash.
type Digest struct {
	Algo string // "sha512", "sha384", "sha256" or "sha1"
	Sum  []byte
}

var digestSizes = map[string]int{"sha512": 64, "sha384": 48, "sha256": 32, "sha1": 20}

// strength orders algorithms; the strongest one present is checked, as
// npm's ssri does.
var strength = map[string]int{"sha512": 4, "sha384": 3, "sha256": 2, "sha1": 1}

// ParseDigest picks the strongest hash of a version: from dist.integrity (a
// Subresource Integrity string, possibly with several hashes), else from the
// legacy hex sha1 dist.shasum.
func ParseDigest(d Dist) (Digest, error) {
	var best Digest
	for _, field := range strings.Fields(d.Integrity) {
		algo, rest, ok := strings.Cut(field, "-")
		if !ok || strength[algo] <= strength[best.Algo] {
			continue
		}
		if i := strings.IndexByte(rest, '?'); i >= 0 { // SRI options
			rest = rest[:i]
		}
		sum, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(sum) != digestSizes[algo] {
			continue
		}
		best = Digest{Algo: algo, Sum: sum}
	}
	if best.Algo != "" {
		return best, nil
	}
	if sum, err := hex.DecodeString(d.Shasum); err == nil && len(sum) == 20 {
		return Digest{Algo: "sha1", Sum: sum}, nil
	}
	return Digest{}, ErrNoIntegrity
}

// Hex is the digest's lowercase hex form, used as the tarball's storage key.
func (d Digest) Hex() string { return hex.EncodeToString(d.Sum) }

// NewHash returns a hash of the digest's algorithm.
func (d Digest) NewHash() hash.Hash {
	switch d.Algo {
	case "sha384":
		return sha512.New384()
	case "sha256":
		return sha256.New()
	case "sha1":
		return sha1.New()
	}
	return sha512.New()
}

// String is the digest in Subresource Integrity form, "sha512-<base64>".
func (d Digest) String() string { return d.Algo + "-" + base64.StdEncoding.EncodeToString(d.Sum) }
