package sign

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const integrity = "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignVerifies checks a signature against crypto/ecdsa directly, as
// npm (node's crypto.verify over SHA-256) does: over
// "name@version:integrity", base64 of an ASN.1 signature, and only that
// message.
func TestSignVerifies(t *testing.T) {
	k := newKey(t)
	s, err := New(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, version string }{
		{"left-pad", "1.3.0"},
		{"@corp/lib", "2.0.0-beta.1+build.7"},
	} {
		sig, err := s.Sign(tc.name, tc.version, integrity)
		if err != nil {
			t.Fatal(err)
		}
		if sig.KeyID != s.KeyID() {
			t.Errorf("%s: keyid %q, the signer's is %q", tc.name, sig.KeyID, s.KeyID())
		}
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		if err != nil {
			t.Fatalf("%s: signature is not base64: %v", tc.name, err)
		}
		h := sha256.Sum256([]byte(tc.name + "@" + tc.version + ":" + integrity))
		if !ecdsa.VerifyASN1(&k.PublicKey, h[:], raw) {
			t.Errorf("%s: signature does not verify with crypto/ecdsa", tc.name)
		}
		if err := Verify(s.PublicKey(), tc.name, tc.version, integrity, sig.Sig); err != nil {
			t.Errorf("%s: Verify: %v", tc.name, err)
		}
		for _, other := range [][3]string{
			{tc.name, tc.version + "1", integrity},
			{tc.name + "x", tc.version, integrity},
			{tc.name, tc.version, strings.Replace(integrity, "z4", "z5", 1)},
		} {
			if Verify(s.PublicKey(), other[0], other[1], other[2], sig.Sig) == nil {
				t.Errorf("%s: the signature verifies over %v too", tc.name, other)
			}
		}
		again, _ := s.Sign(tc.name, tc.version, integrity)
		if again != sig {
			t.Errorf("%s: two signatures of one version differ (%s, %s): replicas would serve different documents", tc.name, sig.Sig, again.Sig)
		}
	}
	if Verify(mustSigner(t, newKey(t)).PublicKey(), "left-pad", "1.3.0", integrity, mustSign(t, s)) == nil {
		t.Error("a signature verifies with another key")
	}
}

func mustSigner(t *testing.T, k *ecdsa.PrivateKey) *Signer {
	t.Helper()
	s, err := New(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSign(t *testing.T, s *Signer) string {
	t.Helper()
	sig, err := s.Sign("left-pad", "1.3.0", integrity)
	if err != nil {
		t.Fatal(err)
	}
	return sig.Sig
}

// TestPublicKey checks the keys document entry: base64 SPKI DER, keyid
// "SHA256:" + base64(sha256(DER)), the scheme npm knows, expires null
// unless configured, and a configured keyid in both key and signatures.
func TestPublicKey(t *testing.T) {
	k := newKey(t)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	wantID := "SHA256:" + base64.StdEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		opts    Options
		keyid   string
		expires string
	}{
		{"computed", Options{}, wantID, ""},
		{"configured", Options{KeyID: "SHA256:mine", Expires: "2030-01-01T00:00:00.000Z"}, "SHA256:mine", "2030-01-01T00:00:00.000Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(k, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			pk := s.PublicKey()
			if pk.KeyID != tc.keyid || s.KeyID() != tc.keyid {
				t.Errorf("keyid %q (signer %q), want %q", pk.KeyID, s.KeyID(), tc.keyid)
			}
			if pk.Key != base64.StdEncoding.EncodeToString(der) {
				t.Errorf("key %q is not the base64 SPKI DER", pk.Key)
			}
			if pk.KeyType != "ecdsa-sha2-nistp256" || pk.Scheme != "ecdsa-sha2-nistp256" {
				t.Errorf("keytype %q scheme %q", pk.KeyType, pk.Scheme)
			}
			if got := ""; pk.Expires != nil {
				got = *pk.Expires
				if got != tc.expires {
					t.Errorf("expires %q, want %q", got, tc.expires)
				}
			} else if tc.expires != "" {
				t.Errorf("expires null, want %q", tc.expires)
			}
			sig, _ := s.Sign("a", "1.0.0", integrity)
			if sig.KeyID != tc.keyid {
				t.Errorf("signature keyid %q, want %q", sig.KeyID, tc.keyid)
			}
		})
	}
}

// TestParseKey reads the forms a key is configured in and refuses every
// key npm could not verify signatures of.
func TestParseKey(t *testing.T) {
	k := newKey(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsader, _ := x509.MarshalPKCS8PrivateKey(rk)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edder, _ := x509.MarshalPKCS8PrivateKey(ed)
	pubder, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
		err  string
	}{
		{"PKCS#8 PEM", pemOf("PRIVATE KEY", pkcs8), true, ""},
		{"SEC 1 PEM", pemOf("EC PRIVATE KEY", sec1), true, ""},
		{"base64 PKCS#8 DER", []byte(base64.StdEncoding.EncodeToString(pkcs8) + "\n"), true, ""},
		{"P-384", pemOf("PRIVATE KEY", p384der), false, "not P-256"},
		{"RSA", pemOf("PRIVATE KEY", rsader), false, "not an ECDSA key"},
		{"Ed25519", pemOf("PRIVATE KEY", edder), false, "not an ECDSA key"},
		{"public key", pemOf("PUBLIC KEY", pubder), false, "not a private key"},
		{"garbage", []byte("hello"), false, "not a PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.in)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(k) {
				t.Error("a different key was read")
			}
		})
	}
	if _, err := New(p384, Options{}); err == nil {
		t.Error("New took a P-384 key")
	}
}

// TestCreate writes a key once, private to the owner, and never
// replaces it.
func TestCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "signing-key.pem")
	made, err := Create(path)
	if err != nil || !made {
		t.Fatalf("Create: %v, %v", made, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	first, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	made, err = Create(path)
	if err != nil || made {
		t.Fatalf("Create over an existing key: %v, %v", made, err)
	}
	second, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.KeyID() != second.KeyID() {
		t.Error("the key changed on the second Create")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the key's directory holds %d files, want the key alone", len(entries))
	}
}
