package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// ErrNoUser is returned for a user name the store does not have.
var ErrNoUser = errors.New("no such user")

// Users is an htpasswd file of bcrypt hashes, the format Apache's
// htpasswd -B and Verdaccio write, so their users can be brought along.
// The file is re-read when it changes on disk, so `npmgate user add` takes
// effect in a running server. It is a UserStore.
type Users struct {
	path  string
	file  *fileReloader
	mu    sync.RWMutex
	hash  map[string][]byte
	order []string
}

// OpenUsers reads the file; a missing file is an empty user list.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path, file: &fileReloader{path: path}, hash: map[string][]byte{}}
	if err := u.reload(true); err != nil {
		return nil, err
	}
	return u, nil
}

// Refresh re-reads the file if it changed since the last read.
func (u *Users) Refresh() error { return u.reload(false) }

func (u *Users) reload(force bool) error { return u.file.load(force, u.apply) }

// apply takes the file's contents as the users.
func (u *Users) apply(data []byte, found bool) error {
	hash, order := map[string][]byte{}, []string(nil)
	if found {
		var err error
		if hash, order, err = parseHtpasswd(data, u.path); err != nil {
			return err
		}
	}
	u.mu.Lock()
	u.hash, u.order = hash, order
	u.mu.Unlock()
	return nil
}

func parseHtpasswd(data []byte, path string) (map[string][]byte, []string, error) {
	hash := map[string][]byte{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("%s:%d: not name:hash", path, n)
		}
		// Verdaccio appends ":autocreated …" fields after the hash.
		h, _, _ = strings.Cut(h, ":")
		if err := CheckHash([]byte(h)); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: user %q: only bcrypt hashes are accepted (htpasswd -B)", path, n, name)
		}
		if _, dup := hash[name]; !dup {
			order = append(order, name)
		}
		hash[name] = []byte(h)
	}
	return hash, order, sc.Err()
}

// UserHash is a user and the bcrypt hash of their password.
type UserHash struct {
	Name string
	Hash []byte
}

// ReadHtpasswd reads an htpasswd file of bcrypt hashes (htpasswd -B,
// Verdaccio), in file order, to bring its users into another store.
func ReadHtpasswd(path string) ([]UserHash, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	hash, order, err := parseHtpasswd(data, path)
	if err != nil {
		return nil, err
	}
	out := make([]UserHash, len(order))
	for i, name := range order {
		out[i] = UserHash{Name: name, Hash: hash[name]}
	}
	return out, nil
}

// Exists reports whether the user is in the file.
func (u *Users) Exists(name string) (bool, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.hash[name]
	return ok, nil
}

// List returns the users in file order.
func (u *Users) List() ([]UserInfo, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]UserInfo, len(u.order))
	for i, name := range u.order {
		out[i] = UserInfo{Name: name, Disabled: isLocked(u.hash[name])}
	}
	return out, nil
}

// Disabled reports whether the user is disabled (ErrNoUser when missing).
func (u *Users) Disabled(name string) (bool, error) {
	u.mu.RLock()
	h, ok := u.hash[name]
	u.mu.RUnlock()
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	return isLocked(h), nil
}

// SetDisabled disables or enables a user, writing the file atomically.
func (u *Users) SetDisabled(name string, disabled bool) error {
	return u.update(func(hash map[string][]byte, order []string) ([]string, error) {
		h, ok := hash[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoUser, name)
		}
		hash[name] = lock(h, disabled)
		return order, nil
	})
}

// Verify checks a password (VerifyPassword: an unknown user costs the
// same as a known one).
func (u *Users) Verify(name, password string) (bool, error) {
	u.mu.RLock()
	h := u.hash[name]
	u.mu.RUnlock()
	return VerifyPassword(h, password), nil
}

// Set adds a user or changes a password, writing the file atomically.
func (u *Users) Set(name, password string) error {
	h, err := HashPassword(name, password)
	if err != nil {
		return err
	}
	return u.update(func(hash map[string][]byte, order []string) ([]string, error) {
		old, ok := hash[name]
		if !ok {
			order = append(order, name)
		}
		hash[name] = lock(h, isLocked(old)) // a new password does not enable a user
		return order, nil
	})
}

// Remove deletes a user.
func (u *Users) Remove(name string) error {
	return u.update(func(hash map[string][]byte, order []string) ([]string, error) {
		if _, ok := hash[name]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoUser, name)
		}
		delete(hash, name)
		return slices.DeleteFunc(order, func(n string) bool { return n == name }), nil
	})
}

// update applies a change to a fresh read of the file and writes it back.
func (u *Users) update(change func(map[string][]byte, []string) ([]string, error)) error {
	return u.file.update(u.apply, func() error {
		u.mu.Lock()
		defer u.mu.Unlock()
		hash := make(map[string][]byte, len(u.hash))
		for k, v := range u.hash {
			hash[k] = v
		}
		order, err := change(hash, slices.Clone(u.order))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		for _, name := range order {
			fmt.Fprintf(&b, "%s:%s\n", name, hash[name])
		}
		if err := writeFileAtomic(u.path, b.Bytes(), 0o600); err != nil {
			return err
		}
		u.hash, u.order = hash, order
		return nil
	})
}
