package agg

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// mergeFanIn is how many runs one merge pass reads at once; each has a
// read buffer of mergeBufSize.
const (
	mergeFanIn   = 64
	mergeBufSize = 64 << 10
)

// A spill file is a sequence of records, each uvarint(length) and the
// record: uvarint(len(key)), key, the group texts and each aggregate's
// encoded state. A run is a stretch of records in key order (equal keys
// may follow each other); runs are numbered in the order of the rows they
// hold.
type run struct {
	f      *os.File
	off, n int64
}

type spiller struct {
	dir    string
	files  []*os.File
	f      *os.File
	w      *bufio.Writer
	off    int64 // bytes written to f
	start  int64 // where the current run began
	runs   []run
	lenBuf [binary.MaxVarintLen64]byte
}

func (a *Aggregator) spiller() (*spiller, error) {
	if a.sp == nil {
		a.sp = &spiller{dir: a.tmpDir}
		if err := a.sp.newFile(); err != nil {
			return nil, err
		}
	}
	return a.sp, nil
}

func (s *spiller) newFile() error {
	f, err := os.CreateTemp(s.dir, "exporter-agg-*.spill")
	if err != nil {
		return fmt.Errorf("agg: spill: %w", err)
	}
	s.files = append(s.files, f)
	s.f, s.off, s.start = f, 0, 0
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, 256<<10)
	} else {
		s.w.Reset(f)
	}
	return nil
}

func (s *spiller) write(rec []byte) error {
	n := binary.PutUvarint(s.lenBuf[:], uint64(len(rec)))
	if _, err := s.w.Write(s.lenBuf[:n]); err != nil {
		return fmt.Errorf("agg: spill: %w", err)
	}
	if _, err := s.w.Write(rec); err != nil {
		return fmt.Errorf("agg: spill: %w", err)
	}
	s.off += int64(n + len(rec))
	return nil
}

// maxKeptBuf is the largest record or read buffer kept for reuse; one
// huge group (a large distinct set) should not pin its size for good.
const maxKeptBuf = 4 << 20

func shrink(b []byte) []byte {
	if cap(b) > maxKeptBuf {
		return nil
	}
	return b
}

// endRun closes the current run, if it has records.
func (s *spiller) endRun() {
	if s.off > s.start {
		s.runs = append(s.runs, run{f: s.f, off: s.start, n: s.off - s.start})
	}
	s.start = s.off
}

// dropFilesExcept closes and removes every spill file but keep.
func (s *spiller) dropFilesExcept(keep *os.File) error {
	var errs []error
	kept := s.files[:0]
	for _, f := range s.files {
		if f == keep {
			kept = append(kept, f)
			continue
		}
		errs = append(errs, f.Close(), os.Remove(f.Name()))
	}
	s.files = kept
	return errors.Join(errs...)
}

func (s *spiller) close() error {
	return s.dropFilesExcept(nil)
}

// source reads the records of one run.
type source struct {
	idx       int // run number: ties go to the earlier run
	r         *bufio.Reader
	buf       []byte
	key, body []byte
}

func (s *source) next() (bool, error) {
	n, err := binary.ReadUvarint(s.r)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("agg: read spill: %w", err)
	}
	if uint64(cap(s.buf)) < n || (cap(s.buf) > maxKeptBuf && n < maxKeptBuf) {
		s.buf = make([]byte, n)
	}
	s.buf = s.buf[:n]
	if _, err := io.ReadFull(s.r, s.buf); err != nil {
		return false, fmt.Errorf("agg: read spill: %w", err)
	}
	kl, k := binary.Uvarint(s.buf)
	if k <= 0 || uint64(len(s.buf)-k) < kl {
		return false, errCorrupt
	}
	s.key = s.buf[k : k+int(kl)]
	s.body = s.buf[k+int(kl):]
	return true, nil
}

// sourceHeap is a min-heap of sources by (key, run number).
type sourceHeap []*source

func (h sourceHeap) less(i, j int) bool {
	if c := bytes.Compare(h[i].key, h[j].key); c != 0 {
		return c < 0
	}
	return h[i].idx < h[j].idx
}

func (h sourceHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// mergeAll merges every run and emits the result rows. While there are
// more runs than mergeFanIn, consecutive runs are merged into longer ones
// in a new file first.
func (a *Aggregator) mergeAll(emit func([][]byte) error) error {
	sp := a.sp
	if err := sp.w.Flush(); err != nil {
		return fmt.Errorf("agg: spill: %w", err)
	}
	runs := sp.runs
	for len(runs) > mergeFanIn {
		if err := sp.newFile(); err != nil {
			return err
		}
		var next []run
		for i := 0; i < len(runs); i += mergeFanIn {
			err := a.mergeRuns(runs[i:min(i+mergeFanIn, len(runs))], func(key, texts []byte) error {
				a.rec = appendRecord(a.rec[:0], key, texts, a.mstates, 0)
				err := sp.write(a.rec)
				a.rec = shrink(a.rec)
				return err
			})
			if err != nil {
				return err
			}
			n := len(sp.runs)
			sp.endRun()
			if len(sp.runs) > n {
				next = append(next, sp.runs[n])
			}
		}
		if err := sp.w.Flush(); err != nil {
			return fmt.Errorf("agg: spill: %w", err)
		}
		if err := sp.dropFilesExcept(sp.f); err != nil {
			return fmt.Errorf("agg: spill: %w", err)
		}
		runs = next
	}
	return a.mergeRuns(runs, func(_, texts []byte) error {
		return a.emitRow(emit, texts, a.mstates, 0)
	})
}

// mergeRuns merges runs (consecutive, in row order) k ways and calls out
// once per key, in key order, with a.mstates holding the combined state.
func (a *Aggregator) mergeRuns(runs []run, out func(key, texts []byte) error) error {
	h := make(sourceHeap, 0, len(runs))
	for i, r := range runs {
		size := int(min(r.n, mergeBufSize))
		s := &source{idx: i, r: bufio.NewReaderSize(io.NewSectionReader(r.f, r.off, r.n), size)}
		ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, s)
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	ng := len(a.groupIdx)
	for len(h) > 0 {
		a.mkey = append(a.mkey[:0], h[0].key...)
		ms := a.mergeStates()
		first := true
		for len(h) > 0 && bytes.Equal(h[0].key, a.mkey) {
			s := h[0]
			n, err := textsSpan(s.body, ng)
			if err != nil {
				return err
			}
			if first {
				a.mtexts = append(a.mtexts[:0], s.body[:n]...)
				first = false
			}
			rest := s.body[n:]
			for _, st := range ms {
				if rest, err = st.merge(0, rest); err != nil {
					return err
				}
			}
			ok, err := s.next()
			if err != nil {
				return err
			}
			if !ok {
				h[0] = h[len(h)-1]
				h = h[:len(h)-1]
			}
			h.down(0)
		}
		if err := out(a.mkey, a.mtexts); err != nil {
			return err
		}
	}
	return nil
}
