package feed

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/sign"
)

func testSigner(tb testing.TB) *sign.Signer {
	tb.Helper()
	b, err := sign.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	k, err := sign.ParseKey(b)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := sign.New(k, sign.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// localDoc is a package of n versions; dist.signatures as sigs makes them.
func localDoc(n int, sigs func(version, integrity string) any) *LocalDoc {
	lp := &LocalPackument{Name: "pkg", Versions: map[string]json.RawMessage{}, Time: map[string]string{}, DistTags: map[string]string{}}
	for i := range n {
		v := fmt.Sprintf("1.0.%d", i)
		integrity := fmt.Sprintf("sha512-%086d==", i)
		dist := map[string]any{"integrity": integrity, "shasum": "00", "tarball": "https://npmgate.invalid/pkg/-/pkg-" + v + ".tgz"}
		if s := sigs(v, integrity); s != nil {
			dist["signatures"] = s
		}
		lp.Versions[v] = npm.MustJSON(map[string]any{"name": "pkg", "version": v, "description": "a package", "dist": dist,
			"dependencies": map[string]string{"a": "^1.0.0", "b": "^2.0.0"}})
	}
	return &LocalDoc{Packument: lp}
}

func distOf(t *testing.T, raw json.RawMessage) (string, []sign.Signature) {
	t.Helper()
	var v struct {
		Dist struct {
			Integrity  string
			Signatures []sign.Signature
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v.Dist.Integrity, v.Dist.Signatures
}

// TestSignLocal: versions without a signature by the current key get
// exactly one; one by the current key is kept as stored, even when it no
// longer matches; without a signer nothing changes.
func TestSignLocal(t *testing.T) {
	s := testSigner(t)
	old := testSigner(t)
	stale := sign.Signature{KeyID: s.KeyID(), Sig: "c3RhbGU="}
	for _, tc := range []struct {
		name  string
		sigs  func(v, integrity string) any
		fresh bool // signed now, else kept
	}{
		{"unsigned", func(string, string) any { return nil }, true},
		{"another key", func(v, i string) any { sg, _ := old.Sign("pkg", v, i); return []sign.Signature{sg} }, true},
		{"ours and another", func(v, i string) any {
			a, _ := old.Sign("pkg", v, i)
			b, _ := s.Sign("pkg", v, i)
			return []sign.Signature{a, b}
		}, true},
		{"ours, stale", func(string, string) any { return []sign.Signature{stale} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := localDoc(3, tc.sigs)
			if err := signLocal(nil, d); err != nil {
				t.Fatal(err)
			}
			before := localDoc(3, tc.sigs)
			for v, raw := range d.Packument.Versions {
				if string(raw) != string(before.Packument.Versions[v]) {
					t.Fatalf("without a signer %s changed", v)
				}
			}
			if err := signLocal(s, d); err != nil {
				t.Fatal(err)
			}
			for v, raw := range d.Packument.Versions {
				integrity, sigs := distOf(t, raw)
				if len(sigs) != 1 || sigs[0].KeyID != s.KeyID() {
					t.Fatalf("%s: dist.signatures %+v, want one by the current key", v, sigs)
				}
				ok := sign.Verify(s.PublicKey(), "pkg", v, integrity, sigs[0].Sig) == nil
				if tc.fresh != ok {
					t.Errorf("%s: signature verifies: %v, want %v", v, ok, tc.fresh)
				}
				if !tc.fresh && sigs[0] != stale {
					t.Errorf("%s: the stored signature was replaced by %+v", v, sigs[0])
				}
			}
		})
	}
}

// BenchmarkSignLocal measures what signing adds to building a local
// package's index (500 versions): the check of versions already signed
// (every build after the first publish) and the signing of unsigned
// ones (documents stored before npmgate signed), next to AsPackument,
// which the build runs anyway.
func BenchmarkSignLocal(b *testing.B) {
	s := testSigner(b)
	signed := func(v, i string) any { sg, _ := s.Sign("pkg", v, i); return []sign.Signature{sg} }
	for _, bc := range []struct {
		name string
		sigs func(v, i string) any
		run  func(*LocalDoc) error
	}{
		{"AsPackument", signed, func(d *LocalDoc) error { _, _, err := d.AsPackument(); return err }},
		{"signed", signed, func(d *LocalDoc) error { return signLocal(s, d) }},
		{"unsigned", func(string, string) any { return nil }, func(d *LocalDoc) error { return signLocal(s, d) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			docs := make([]*LocalDoc, 0, 8)
			for range 8 {
				docs = append(docs, localDoc(500, bc.sigs))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%len(docs) == 0 && i > 0 {
					b.StopTimer()
					for j := range docs {
						docs[j] = localDoc(500, bc.sigs)
					}
					b.StartTimer()
				}
				if err := bc.run(docs[i%len(docs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
