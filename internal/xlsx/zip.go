package xlsx

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/klauspost/compress/flate"
)

// Workbooks are assembled from entries that were compressed earlier:
//
//   - each sheet is streamed by its own excelize.File, whose worksheet part is
//     deflated into a spool file in the work folder as excelize writes it
//     (sheetCapture); the rest of that File is thrown away;
//   - when a workbook is complete, one more excelize.File holding only empty
//     sheets supplies the workbook-level parts (workbook.xml, styles.xml,
//     [Content_Types].xml, ...), deflated in memory (partsCapture);
//   - the entries are written to the output with zip.Writer.CreateRaw in a
//     fixed order with fixed times, so the same rows give the same bytes
//     although excelize walks its streams in map order.
//
// Only one excelize.File with a stream is alive at a time, so memory does not
// grow with sheets or rows, and a sheet's size is known exactly once it is
// finished.

// zipEntry is one compressed part of a workbook.
type zipEntry struct {
	name  string
	crc   uint32
	csize uint64 // compressed
	usize uint64 // uncompressed
	data  []byte // in memory, or
	path  string // in a spool file
}

// fixedDOSDate is 1980-01-01, the earliest date a zip entry can carry.
const fixedDOSDate = 1<<5 | 1

// deflater compresses entries, reusing its compressors: fw for small
// parts, bd for worksheets.
type deflater struct {
	fw *flate.Writer
	bd *blockDeflater
}

func newDeflater(level int) (*deflater, error) {
	fw, err := flate.NewWriter(io.Discard, level)
	if err != nil {
		return nil, err
	}
	return &deflater{fw: fw, bd: newBlockDeflater(level)}, nil
}

// entryWriter computes the CRC-32 and size of an entry while deflating it.
type entryWriter struct {
	crc uint32
	n   uint64
	fw  io.Writer
}

func (e *entryWriter) Write(p []byte) (int, error) {
	e.crc = crc32.Update(e.crc, crc32.IEEETable, p)
	e.n += uint64(len(p))
	return e.fw.Write(p)
}

// countWriter counts and optionally hashes what passes to w.
type countWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.h != nil {
		c.h.Write(p)
	}
	var n int
	var err error
	if c.w != nil {
		n, err = c.w.Write(p)
	} else {
		n = len(p)
	}
	c.n += int64(n)
	return n, err
}

var errAddFS = errors.New("xlsx: AddFS is not supported")

// sheetCapture is the excelize.ZipWriter of a one-sheet File: it deflates
// the worksheet part into a spool file and discards everything else.
type sheetCapture struct {
	d      *deflater
	target string // the worksheet part
	path   string // spool file
	// dimension is the sheet's used range, such as A1:J1001. The stream
	// writer writes the range of an empty sheet, A1, before any row is
	// known; readers such as openpyxl in read-only mode trust it.
	dimension string
	entry     *zipEntry

	file *os.File
	bw   *bufio.Writer
	cw   countWriter
	ew   entryWriter
	open bool
	err  error
}

func (s *sheetCapture) Create(name string) (io.Writer, error) {
	if err := s.finish(); err != nil {
		return nil, err
	}
	if name != s.target {
		return io.Discard, nil
	}
	if s.entry != nil {
		return nil, fmt.Errorf("xlsx: excelize wrote %s twice", name)
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s.file = f
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, 256<<10)
	} else {
		s.bw.Reset(f)
	}
	s.cw = countWriter{w: s.bw}
	s.d.bd.Reset(&s.cw)
	s.ew = entryWriter{fw: s.d.bd}
	s.open = true
	if s.dimension == "" {
		return &s.ew, nil
	}
	return &dimensionFix{w: &s.ew, repl: []byte(`<dimension ref="` + s.dimension + `">`)}, nil
}

// streamDimension is what excelize's StreamWriter writes for the used range.
var streamDimension = []byte(`<dimension ref="A1">`)

// dimensionFix replaces the first streamDimension in the opening bytes of a
// worksheet part with the real used range.
type dimensionFix struct {
	w    io.Writer
	repl []byte
	head []byte
	done bool
}

func (d *dimensionFix) Write(p []byte) (int, error) {
	if d.done {
		return d.w.Write(p)
	}
	d.head = append(d.head, p...)
	if i := bytes.Index(d.head, streamDimension); i >= 0 {
		d.done = true
		out := append(append(d.head[:i:i], d.repl...), d.head[i+len(streamDimension):]...)
		d.head = nil
		if _, err := d.w.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(d.head) > 64<<10 { // the dimension comes first: give up, pass through
		d.done = true
		head := d.head
		d.head = nil
		if _, err := d.w.Write(head); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// finish completes the spooled entry, if one is open.
func (s *sheetCapture) finish() error {
	if !s.open {
		return s.err
	}
	s.open = false
	err := s.d.bd.Close()
	if err == nil {
		err = s.bw.Flush()
	}
	if cerr := s.file.Close(); err == nil {
		err = cerr
	}
	s.file = nil
	if err != nil {
		s.err = err
		return err
	}
	s.entry = &zipEntry{name: s.target, crc: s.ew.crc, csize: uint64(s.cw.n), usize: s.ew.n, path: s.path}
	return nil
}

func (s *sheetCapture) AddFS(fs.FS) error { return errAddFS }

func (s *sheetCapture) Close() error { return s.finish() }

// abort closes a half-written spool file.
func (s *sheetCapture) abort() {
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
	s.open = false
}

// partsCapture is the excelize.ZipWriter of the File that supplies a
// workbook's parts: it deflates them into memory. Worksheet parts are
// recorded by name only: the spooled sheets replace them.
type partsCapture struct {
	d      *deflater
	parts  []zipEntry
	sheets map[string]bool // worksheet parts seen

	cur *zipEntry
	buf bytes.Buffer
	ew  entryWriter
}

func (p *partsCapture) Create(name string) (io.Writer, error) {
	if err := p.finish(); err != nil {
		return nil, err
	}
	if _, ok := p.sheets[name]; ok {
		if p.sheets[name] {
			return nil, fmt.Errorf("xlsx: excelize wrote %s twice", name)
		}
		p.sheets[name] = true
		return io.Discard, nil
	}
	p.cur = &zipEntry{name: name}
	p.buf.Reset()
	p.d.fw.Reset(&p.buf)
	p.ew = entryWriter{fw: p.d.fw}
	return &p.ew, nil
}

func (p *partsCapture) finish() error {
	if p.cur == nil {
		return nil
	}
	if err := p.d.fw.Close(); err != nil {
		return err
	}
	e := p.cur
	p.cur = nil
	e.crc, e.usize = p.ew.crc, p.ew.n
	e.data = bytes.Clone(p.buf.Bytes())
	e.csize = uint64(len(e.data))
	p.parts = append(p.parts, *e)
	return nil
}

func (p *partsCapture) AddFS(fs.FS) error { return errAddFS }

func (p *partsCapture) Close() error { return p.finish() }

// sheetPartName is the part excelize gives the n-th sheet (1-based) of a new
// workbook; partsCapture checks that excelize wrote exactly these.
func sheetPartName(n int) string { return "xl/worksheets/sheet" + strconv.Itoa(n) + ".xml" }

const contentTypesPart = "[Content_Types].xml"

// sortEntries puts [Content_Types].xml first, then everything by name.
func sortEntries(es []zipEntry) {
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i].name, es[j].name
		if (a == contentTypesPart) != (b == contentTypesPart) {
			return a == contentTypesPart
		}
		return a < b
	})
}

// zipSize is the exact size of the archive zip.Writer makes from entries
// written with CreateRaw in this order, without comment or extra fields.
func zipSize(es []zipEntry) int64 {
	const (
		localHeader   = 30
		centralHeader = 46
		endRecord     = 22
		zip64Extra    = 28
		zip64End      = 56 + 20
		max32         = 1<<32 - 1
	)
	var off, dir uint64
	need64 := len(es) >= 0xffff
	for _, e := range es {
		n := uint64(len(e.name))
		dir += centralHeader + n
		if e.csize >= max32 || e.usize >= max32 || off >= max32 {
			dir += zip64Extra
		}
		off += localHeader + n + e.csize
	}
	if off >= max32 || dir >= max32 {
		need64 = true
	}
	size := off + dir + endRecord
	if need64 {
		size += zip64End
	}
	return int64(size)
}

// writeZip writes the entries, in order, to w.
func writeZip(w io.Writer, es []zipEntry) error {
	zw := zip.NewWriter(w)
	buf := make([]byte, 1<<20)
	for i := range es {
		e := &es[i]
		fh := &zip.FileHeader{
			Name:               e.name,
			Method:             zip.Deflate,
			CRC32:              e.crc,
			CompressedSize64:   e.csize,
			UncompressedSize64: e.usize,
			CreatorVersion:     20,
			ReaderVersion:      20,
			//lint:ignore SA1019 a fixed MS-DOS date without the extended-timestamp extra field Modified adds keeps entries minimal and deterministic
			ModifiedDate: fixedDOSDate,
		}
		fw, err := zw.CreateRaw(fh)
		if err != nil {
			return err
		}
		if e.data != nil || e.path == "" {
			if _, err := fw.Write(e.data); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(e.path)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(fw, io.LimitReader(f, int64(e.csize)), buf)
		_ = f.Close()
		if err != nil {
			return err
		}
		if uint64(n) != e.csize {
			return fmt.Errorf("xlsx: spool %s is short: %d of %d bytes", e.path, n, e.csize)
		}
	}
	return zw.Close()
}
