package xlsx

import (
	"github.com/klauspost/compress/flate"
)

// estimator tracks an upper bound of the compressed size of the sheet being
// written, for MaxFileBytes. The real sheet XML is compressed only when the
// sheet is finished, so the estimator deflates, at the same level, a replica
// of the XML excelize writes for each row (same tags, references and
// escaping) and counts the output.
//
// Deflate holds back up to a block (about 64 KiB) of input before emitting
// anything; that pending input is counted at full size, which bounds its
// compressed size from above. When that bound says a row does not fit, the
// estimator flushes the replica stream to get the exact figure before the
// writer acts on it: flushing costs a few bytes per block, so the estimate
// stays an upper bound, and it only happens near a file's limit.
type estimator struct {
	fw      *flate.Writer
	out     countWriter
	in      int64 // replica bytes fed
	inMark  int64 // input whose compressed form is surely in out
	outMark int64
	fed     bool // the current row is fed
}

func newEstimator(level int) (*estimator, error) {
	e := &estimator{}
	fw, err := flate.NewWriter(&e.out, level)
	if err != nil {
		return nil, err
	}
	e.fw = fw
	return e, nil
}

// feed adds one row's replica XML.
func (e *estimator) feed(p []byte) {
	before := e.in
	_, _ = e.fw.Write(p) // countWriter never fails
	e.in += int64(len(p))
	if e.out.n != e.outMark {
		// Output appeared during this write: all input before it is surely
		// compressed; this row may still be (partly) pending.
		e.outMark = e.out.n
		e.inMark = before
	}
	e.fed = true
}

// bound is an upper bound of the compressed size of what was fed (plus the
// few hundred bytes the bit writer may hold, covered by the caller's slack).
func (e *estimator) bound() int64 {
	return e.out.n + (e.in - e.inMark)
}

// exact flushes the replica stream so that bound is tight; it reports
// whether that changed anything.
func (e *estimator) exact() bool {
	if e.in == e.inMark {
		return false
	}
	_ = e.fw.Flush()
	e.outMark = e.out.n
	e.inMark = e.in
	return true
}

// reset starts a new sheet.
func (e *estimator) reset() {
	e.out.n = 0
	e.fw.Reset(&e.out)
	e.in, e.inMark, e.outMark = 0, 0, 0
	e.fed = false
}
