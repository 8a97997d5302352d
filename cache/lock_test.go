package cache

import (
	"errors"
	"testing"
)

func TestLockServerOnePerDirectory(t *testing.T) {
	dir := t.TempDir()
	first, err := LockServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockServer(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("second server lock: %v, want ErrInUse", err)
	}
	// Tools open the directory beside the server as before.
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatalf("OpenDisk beside a server: %v", err)
	}
	d.Close()
	first.Close()
	again, err := LockServer(dir)
	if err != nil {
		t.Fatalf("after the first released it: %v", err)
	}
	again.Close()
}
