package warm

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress shows how far a run is: on a terminal one line redrawn in
// place, at most every redraw; elsewhere (CI logs) a plain line each time
// another tenth of the packages is done.
type progress struct {
	w    io.Writer
	term bool

	mu                                     sync.Mutex
	total, count, fetched, present, failed int
	drawn                                  time.Time
	drawnCount                             int
	nextTenth                              int
}

const redraw = 100 * time.Millisecond

const barWidth = 30

func newProgress(w io.Writer, term bool, total int) *progress {
	p := &progress{w: w, term: term, total: total, nextTenth: 1}
	if w != nil && term && total > 0 {
		p.draw()
	}
	return p
}

func (p *progress) done(s Status) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	switch s {
	case Fetched:
		p.fetched++
	case Present:
		p.present++
	default:
		p.failed++
	}
	if p.term {
		if p.count == p.total || time.Since(p.drawn) >= redraw {
			p.draw()
		}
		return
	}
	if p.count*10 >= p.nextTenth*p.total {
		for p.count*10 >= p.nextTenth*p.total {
			p.nextTenth++
		}
		fmt.Fprintf(p.w, "warm: %d/%d (%d%%) %s\n", p.count, p.total, p.count*100/p.total, p.counts())
	}
}

func (p *progress) counts() string {
	return fmt.Sprintf("fetched %d present %d failed %d", p.fetched, p.present, p.failed)
}

// draw writes the bar line; the caller holds mu (or is the constructor).
func (p *progress) draw() {
	fill := 0
	if p.total > 0 {
		fill = p.count * barWidth / p.total
	}
	bar := strings.Repeat("#", fill) + strings.Repeat("-", barWidth-fill)
	fmt.Fprintf(p.w, "\r\x1b[K[%s] %d/%d %s", bar, p.count, p.total, p.counts())
	p.drawn, p.drawnCount = time.Now(), p.count
}

// finish ends the updating line.
func (p *progress) finish() {
	if p.w == nil || !p.term || p.total == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawnCount != p.count {
		p.draw()
	}
	fmt.Fprintln(p.w)
}
