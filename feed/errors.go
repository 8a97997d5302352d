package feed

import (
	"errors"
	"fmt"
)

// Errors of the feed layer.
var (
	ErrNotFound        = errors.New("not found")
	ErrVersionNotFound = errors.New("version not found")
	// ErrBlocked: a policy refuses this version (403, saying which rule).
	ErrBlocked = errors.New("blocked by policy")
)

// Errors of a feed's writes. A refusal carries one of them, or an npm
// or auth sentinel, with the message the client reads.
var (
	// ErrNotLocal: the package was not published to the feed (404).
	ErrNotLocal = errors.New("not a local package")
	// ErrConflict: a revision that is not the current one, or a version
	// published before (409).
	ErrConflict = errors.New("conflict")
	// ErrNotMaintainer: the caller may not change the package; the
	// message names who may (403).
	ErrNotMaintainer = errors.New("not a maintainer")
	// ErrConnectorServes: a connector serves the name a publish claims
	// (403).
	ErrConnectorServes = errors.New("a connector serves the name")
	// ErrConnectorUnaskable: a connector could not say whether it serves
	// the name; the refusal's cause decides the status (a 5xx).
	ErrConnectorUnaskable = errors.New("connector cannot be asked")
)

// Refusal is a write refused for what it asks.
type Refusal struct {
	Kind error
	Msg  string
	// Cause, for errConnectorUnaskable, is why the connector could not
	// be asked. It is not unwrapped: the client reads msg.
	Cause error
}

func (e *Refusal) Error() string { return e.Msg }
func (e *Refusal) Unwrap() error { return e.Kind }

func Refuse(kind error, format string, args ...any) error {
	return &Refusal{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
