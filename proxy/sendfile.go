package proxy

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/cache"
)

// spillMin is the smallest rendered body kept as a file and sent with
// sendfile. Measured under wrk (BENCHMARKS.md): up to about 128 KiB one
// writev from memory answers as many requests or more; from about 150 KiB
// on the file does better, by 10-20% at 200-400 KiB and more above.
const spillMin = 128 << 10

// sendItem answers with a memory-tier body: from its file by sendfile when
// the item has one and the connection is plain TCP, else from memory.
func sendItem(ctx *fasthttp.RequestCtx, it *cache.Item, gzip bool) {
	body := it.Body
	if gzip {
		body = it.Gzip
	}
	if tc, ok := ctx.Conn().(*net.TCPConn); ok && !ctx.IsHead() {
		if bf := it.OpenFile(gzip); bf != nil {
			ctx.SetBodyStream(&fileBody{f: bf.File, close: bf.Close, conn: tc}, len(body))
			return
		}
	}
	ctx.Response.SetBodyRaw(body)
}

// sendFile answers with an open file of size bytes, corked when the
// connection is plain TCP (see fileBody).
func sendFile(ctx *fasthttp.RequestCtx, f *os.File, size int) {
	if tc, ok := ctx.Conn().(*net.TCPConn); ok {
		ctx.SetBodyStream(&fileBody{f: f, close: f.Close, conn: tc}, size)
		return
	}
	ctx.SetBodyStream(&streamBody{r: f}, size)
}

// fileBody is a response body fasthttp sends with sendfile, under
// TCP_CORK. fasthttp flushes the header before it hands a file to the
// socket, and with TCP_NODELAY (Go's default) that flush goes out as a
// segment of its own, which the client acknowledges on its own; corked,
// the header and the file leave in full segments, as nginx's tcp_nopush
// does. Close uncorks, which sends what is left.
type fileBody struct {
	transfer
	f      *os.File
	close  func() error // closes f, or hands it back for reuse
	conn   *net.TCPConn
	corked bool
}

func (b *fileBody) Read(p []byte) (int, error) {
	n, err := b.f.Read(p)
	b.n += int64(n)
	return n, err
}

// SupportsBodyWriteTo tells fasthttp to call WriteTo.
func (b *fileBody) SupportsBodyWriteTo() bool { return true }

// WriteTo hands the *os.File itself to fasthttp's writer, whose ReadFrom
// is the path to sendfile.
func (b *fileBody) WriteTo(w io.Writer) (int64, error) {
	b.corked = setCork(b.conn, true)
	var n int64
	var err error
	if rf, ok := w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(b.f)
	} else {
		n, err = io.Copy(w, b.f)
	}
	b.n += n
	return n, err
}

func (b *fileBody) Close() error {
	if b.corked {
		setCork(b.conn, false)
	}
	return b.close()
}

func setCork(c *net.TCPConn, on bool) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); err != nil {
		return false
	}
	return serr == nil
}
