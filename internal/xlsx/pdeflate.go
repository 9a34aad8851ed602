package xlsx

import (
	"bytes"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// blockSize is the input each goroutine of a blockDeflater compresses on
// its own. A block starts without the previous block's window, which costs
// well under 1% of size at this length.
const blockSize = 1 << 20

// blockDeflater deflates a stream in independent blocks on several
// goroutines, as pigz does: every block but the last ends with a sync flush
// (byte-aligned, not final), so the blocks written in order form one valid
// deflate stream. The output depends only on the input, not on scheduling.
// Worksheet parts are hundreds of MB of XML, and deflating them on one core
// while the other waits was a fifth of an export's time.
type blockDeflater struct {
	level   int
	out     io.Writer
	cur     []byte
	pending []*deflateJob // in stream order
	max     int           // jobs in flight
	pool    *sync.Pool    // of *flate.Writer
	bufs    *sync.Pool    // of []byte input blocks
	err     error
}

type deflateJob struct {
	in   []byte
	out  bytes.Buffer
	err  error
	done chan struct{}
}

func newBlockDeflater(level int) *blockDeflater {
	return &blockDeflater{
		level: level,
		max:   runtime.GOMAXPROCS(0) + 1,
		pool:  &sync.Pool{},
		bufs:  &sync.Pool{New: func() any { return make([]byte, 0, blockSize) }},
	}
}

// Reset starts a new stream to out, dropping what an abandoned stream left.
func (d *blockDeflater) Reset(out io.Writer) {
	for _, job := range d.pending {
		<-job.done
	}
	d.pending = d.pending[:0]
	d.out, d.err = out, nil
	d.cur = d.bufs.Get().([]byte)[:0]
}

func (d *blockDeflater) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), blockSize-len(d.cur))
		d.cur = append(d.cur, p[:k]...)
		p = p[k:]
		if len(d.cur) == blockSize {
			d.submit(false)
			if d.err != nil {
				return 0, d.err
			}
		}
	}
	return n, nil
}

// submit starts compressing the current block, first writing out finished
// blocks until fewer than max are in flight.
func (d *blockDeflater) submit(final bool) {
	for len(d.pending) >= d.max {
		d.drainOne()
	}
	job := &deflateJob{in: d.cur, done: make(chan struct{})}
	d.cur = d.bufs.Get().([]byte)[:0]
	d.pending = append(d.pending, job)
	go func() {
		defer close(job.done)
		fw, _ := d.pool.Get().(*flate.Writer)
		if fw == nil {
			if fw, job.err = flate.NewWriter(&job.out, d.level); job.err != nil {
				return
			}
		} else {
			fw.Reset(&job.out)
		}
		if _, job.err = fw.Write(job.in); job.err == nil {
			if final {
				job.err = fw.Close()
			} else {
				job.err = fw.Flush()
			}
		}
		d.pool.Put(fw)
	}()
}

// drainOne waits for the oldest block and writes it out.
func (d *blockDeflater) drainOne() {
	job := d.pending[0]
	d.pending = d.pending[1:]
	<-job.done
	d.bufs.Put(job.in[:0]) //lint:ignore SA6002 a slice header is small
	if d.err == nil {
		d.err = job.err
	}
	if d.err == nil {
		_, d.err = d.out.Write(job.out.Bytes())
	}
}

// Close compresses the last block as the final one and writes everything
// out.
func (d *blockDeflater) Close() error {
	if d.err == nil {
		d.submit(true)
	}
	for len(d.pending) > 0 {
		d.drainOne()
	}
	return d.err
}
