// Package spill reads and writes the CSV files that rows are spilled to as
// they arrive from the database.
//
// The format is RFC 4180 CSV with CRLF line ends and no header, which is also
// the body of the CSV output: a field is quoted when it is an empty string
// or holds a comma, a quote, CR or LF, and a NULL is an unquoted empty field,
// so NULL and the empty string stay distinct. In memory a NULL is a nil
// []byte and an empty string a non-nil one of length zero.
package spill

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// AppendRecord appends one CSV record, CRLF included, to dst.
func AppendRecord(dst []byte, fields [][]byte) []byte {
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendField(dst, f)
	}
	return append(dst, '\r', '\n')
}

// AppendField appends one CSV field to dst, quoted when it must be.
func AppendField(dst, f []byte) []byte {
	if f == nil {
		return dst
	}
	if !needsQuotes(f) {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	for {
		i := bytes.IndexByte(f, '"')
		if i < 0 {
			break
		}
		dst = append(dst, f[:i+1]...)
		dst = append(dst, '"')
		f = f[i+1:]
	}
	dst = append(dst, f...)
	return append(dst, '"')
}

func needsQuotes(f []byte) bool {
	if len(f) == 0 {
		return true
	}
	for _, c := range f {
		switch c {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	return false
}

// Writer writes records to a spill file.
type Writer struct {
	f    *os.File
	bw   *bufio.Writer
	buf  []byte
	rows int64
}

// Create creates the spill file at path.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, bw: bufio.NewWriterSize(f, 256<<10)}, nil
}

// Write appends one record.
func (w *Writer) Write(fields [][]byte) error {
	w.buf = AppendRecord(w.buf[:0], fields)
	w.rows++
	_, err := w.bw.Write(w.buf)
	return err
}

// Rows is the number of records written.
func (w *Writer) Rows() int64 { return w.rows }

// Close flushes and closes the file.
func (w *Writer) Close() error {
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Reader reads records from a spill file or any RFC 4180 CSV stream.
type Reader struct {
	br     *bufio.Reader
	raw    []byte
	buf    []byte
	fields [][]byte
	closer io.Closer
}

// ErrMalformed is returned for a record that is not valid CSV.
var ErrMalformed = errors.New("malformed CSV record")

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 256<<10)}
}

// Open opens the spill file at path.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := NewReader(f)
	r.closer = f
	return r, nil
}

// Close closes the underlying file, if Open opened it.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// Raw returns the bytes of the last record read, line end included. They are
// valid until the next call to Next.
func (r *Reader) Raw() []byte { return r.raw }

// Next reads the next record. The fields are valid until the next call. It
// returns io.EOF after the last record.
func (r *Reader) Next() ([][]byte, error) {
	r.raw = r.raw[:0]
	quotes := 0
	for {
		line, err := r.br.ReadSlice('\n')
		r.raw = append(r.raw, line...)
		if err == bufio.ErrBufferFull {
			quotes += bytes.Count(line, quote)
			continue
		}
		if err != nil {
			if err == io.EOF && len(r.raw) > 0 {
				return nil, fmt.Errorf("%w: no line end at end of file", ErrMalformed)
			}
			return nil, err
		}
		quotes += bytes.Count(line, quote)
		if quotes%2 == 0 {
			break
		}
	}
	return r.parse()
}

var quote = []byte{'"'}

func (r *Reader) parse() ([][]byte, error) {
	rec := r.raw
	n := len(rec)
	if n >= 2 && rec[n-2] == '\r' {
		rec = rec[:n-2]
	} else {
		rec = rec[:n-1]
	}
	r.fields = r.fields[:0]
	r.buf = r.buf[:0]
	for {
		if len(rec) == 0 || rec[0] != '"' {
			i := bytes.IndexByte(rec, ',')
			if i < 0 {
				r.fields = append(r.fields, nilIfEmpty(rec))
				return r.fields, nil
			}
			r.fields = append(r.fields, nilIfEmpty(rec[:i]))
			rec = rec[i+1:]
			continue
		}
		// Quoted field: find the closing quote that is not doubled.
		rec = rec[1:]
		var field []byte
		escaped := false
		i := 0
		for {
			j := bytes.IndexByte(rec[i:], '"')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated quote", ErrMalformed)
			}
			i += j
			if i+1 < len(rec) && rec[i+1] == '"' {
				escaped = true
				i += 2
				continue
			}
			break
		}
		if escaped {
			// A field unescaped earlier keeps pointing at buf's old array
			// if this append moves it, so earlier fields stay valid.
			start := len(r.buf)
			r.buf = append(r.buf, rec[:i]...)
			r.buf = unescapeQuotes(r.buf, start)
			field = r.buf[start:len(r.buf):len(r.buf)]
		} else {
			field = rec[:i:i]
		}
		r.fields = append(r.fields, field)
		rec = rec[i+1:]
		if len(rec) == 0 {
			return r.fields, nil
		}
		if rec[0] != ',' {
			return nil, fmt.Errorf("%w: text after closing quote", ErrMalformed)
		}
		rec = rec[1:]
		if len(rec) == 0 {
			r.fields = append(r.fields, nil)
			return r.fields, nil
		}
	}
}

func unescapeQuotes(b []byte, start int) []byte {
	w := start
	for i := start; i < len(b); i++ {
		b[w] = b[i]
		w++
		if b[i] == '"' && i+1 < len(b) && b[i+1] == '"' {
			i++
		}
	}
	return b[:w]
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
