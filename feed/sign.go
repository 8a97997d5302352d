package feed

import (
	"encoding/json"

	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/sign"
)

// SignVersion sets a version document's dist.signatures to the signer's
// one signature over what npm verifies: the document's own name and
// version and its dist.integrity. What the document carried before (a
// client's signatures are dropped at publish already) is replaced.
func SignVersion(s *sign.Signer, doc map[string]json.RawMessage) error {
	var dist map[string]json.RawMessage
	if err := json.Unmarshal(doc["dist"], &dist); err != nil {
		return err
	}
	integrity := npm.JSONString(dist["integrity"])
	if integrity == "" {
		return nil // nothing npm could check a signature against
	}
	sig, err := s.Sign(npm.JSONString(doc["name"]), npm.JSONString(doc["version"]), integrity)
	if err != nil {
		return err
	}
	dist["signatures"] = npm.MustJSON([]sign.Signature{sig})
	doc["dist"] = npm.MustJSON(dist)
	return nil
}

// signed reports whether a stored version already carries exactly one
// signature, by the signer's key. Its validity is not checked: a stored
// signature that no longer matches the document is served as it is, so
// npm reports the tampering rather than npmgate hiding it.
func signed(s *sign.Signer, version json.RawMessage) bool {
	var v struct {
		Dist struct {
			Signatures []sign.Signature `json:"signatures"`
		} `json:"dist"`
	}
	return json.Unmarshal(version, &v) == nil && len(v.Dist.Signatures) == 1 && v.Dist.Signatures[0].KeyID == s.KeyID()
}

// signLocal signs the versions of a local document that carry no
// signature by the current key: versions published before npmgate
// signed, or under a key since replaced. It runs when a package's index
// is built (once per generation, never for a warm request), changes only
// the copy being merged (the stored document keeps what it has), and
// makes the same bytes on every replica, as signatures are
// deterministic. Without a signer it does nothing.
func signLocal(s *sign.Signer, d *LocalDoc) error {
	if s == nil || d.Packument == nil {
		return nil
	}
	for v, raw := range d.Packument.Versions {
		if signed(s, raw) {
			continue
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		if err := SignVersion(s, doc); err != nil {
			return err
		}
		d.Packument.Versions[v] = npm.MustJSON(doc)
	}
	return nil
}
