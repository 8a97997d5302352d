package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrNoUser is returned for a user name the file does not have.
var ErrNoUser = errors.New("no such user")

// bcryptCost is the cost of new hashes: about 50 ms on a current core,
// which is what makes a stolen file slow to attack.
const bcryptCost = 10

// Users is an htpasswd file of bcrypt hashes, the format Apache's
// htpasswd -B and Verdaccio write, so their users can be brought along.
// The file is re-read when it changes on disk, so `npmgate user add` takes
// effect in a running server.
type Users struct {
	path  string
	mu    sync.RWMutex
	hash  map[string][]byte
	order []string
	mtime time.Time
	size  int64
}

// OpenUsers reads the file; a missing file is an empty user list.
func OpenUsers(path string) (*Users, error) {
	u := &Users{path: path, hash: map[string][]byte{}}
	if err := u.reload(true); err != nil {
		return nil, err
	}
	return u, nil
}

// Refresh re-reads the file if it changed since the last read.
func (u *Users) Refresh() error { return u.reload(false) }

func (u *Users) reload(force bool) error {
	st, err := os.Stat(u.path)
	if errors.Is(err, fs.ErrNotExist) {
		u.mu.Lock()
		u.hash, u.order, u.mtime, u.size = map[string][]byte{}, nil, time.Time{}, 0
		u.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	u.mu.RLock()
	same := st.ModTime().Equal(u.mtime) && st.Size() == u.size
	u.mu.RUnlock()
	if same && !force {
		return nil
	}
	data, err := os.ReadFile(u.path)
	if err != nil {
		return err
	}
	hash, order, err := parseHtpasswd(data, u.path)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.hash, u.order, u.mtime, u.size = hash, order, st.ModTime(), st.Size()
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
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: user %q: only bcrypt hashes are accepted (htpasswd -B)", path, n, name)
		}
		if _, dup := hash[name]; !dup {
			order = append(order, name)
		}
		hash[name] = []byte(h)
	}
	return hash, order, sc.Err()
}

// Exists reports whether the user is in the file.
func (u *Users) Exists(name string) bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.hash[name]
	return ok
}

// List returns the user names in file order.
func (u *Users) List() []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return slices.Clone(u.order)
}

// Verify checks a password. It costs a bcrypt comparison, which is
// constant-time; an unknown user costs the same, so timing does not tell
// which names exist.
func (u *Users) Verify(name, password string) bool {
	u.mu.RLock()
	h, ok := u.hash[name]
	u.mu.RUnlock()
	if !ok {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("npmgate-dummy"), bcryptCost)

// ValidateUserName checks a name for a new user.
func ValidateUserName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("a user name has 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("user name %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	if name == "api" {
		return errors.New(`"api" is reserved: it is the user name of API keys`)
	}
	return nil
}

// Set adds a user or changes a password, writing the file atomically.
func (u *Users) Set(name, password string) error {
	if err := ValidateUserName(name); err != nil {
		return err
	}
	if len(password) < 8 || len(password) > 72 {
		return errors.New("a password has 8 to 72 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return err
	}
	return u.update(func(hash map[string][]byte, order []string) ([]string, error) {
		if _, ok := hash[name]; !ok {
			order = append(order, name)
		}
		hash[name] = h
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
	if err := u.reload(true); err != nil {
		return err
	}
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
	if st, err := os.Stat(u.path); err == nil {
		u.mtime, u.size = st.ModTime(), st.Size()
	}
	return nil
}
