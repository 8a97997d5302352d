package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned for a download larger than its limit or than the
// size its source announced. Such bytes are never stored.
var ErrTooLarge = errors.New("download too large")

// LimitSource bounds what src may deliver: a body announced larger than
// max is refused before a byte is read, and a body that grows past max,
// or past the size it announced, fails the read that crosses the line.
// At most max+1 (or size+1) bytes are ever read from src. max <= 0 means
// no limit but the announced size.
func LimitSource(src Source, max int64) Source {
	return func(ctx context.Context) (io.ReadCloser, int64, error) {
		body, size, err := src(ctx)
		return LimitBody(body, size, err, max)
	}
}

// LimitBody is LimitSource applied to one answer of a source (err from
// it is passed on), for callers that build their source per request.
func LimitBody(body io.ReadCloser, size int64, err error, max int64) (io.ReadCloser, int64, error) {
	if err != nil {
		return nil, 0, err
	}
	if max > 0 && size > max {
		body.Close()
		return nil, 0, fmt.Errorf("%w: upstream announced a tarball of %d bytes, over the connector's max_tarball_size of %d bytes", ErrTooLarge, size, max)
	}
	limit, why := max, "the connector's max_tarball_size of"
	if size >= 0 {
		limit, why = size, "the announced"
	}
	if limit <= 0 && size < 0 {
		return body, size, nil
	}
	return &limitedBody{ReadCloser: body, limit: limit, why: why}, size, nil
}

// limitedBody fails once more than limit bytes arrive, having read at
// most one byte too many.
type limitedBody struct {
	io.ReadCloser
	limit int64
	read  int64
	why   string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if left := b.limit - b.read + 1; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if b.read > b.limit {
		return 0, fmt.Errorf("%w: upstream sent more than %s %d bytes", ErrTooLarge, b.why, b.limit)
	}
	return n, err
}
