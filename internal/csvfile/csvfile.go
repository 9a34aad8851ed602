// Package csvfile writes the CSV outputs of an export, plain or gzipped,
// split by rows or bytes, from records already in their final CSV form.
package csvfile

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/spill"
	"github.com/klauspost/compress/gzip"
)

// Options say where the files go and how they are split.
type Options struct {
	Dir            string // folder finished files go to
	Prefix         string // names: PREFIX-0001.csv, PREFIX-0002.csv, ...
	Name           string // instead of Prefix: the one file's name; no limits
	Gzip           bool   // write PREFIX-0001.csv.gz
	MaxRowsPerFile int64  // 0: no limit
	MaxFileBytes   int64  // 0: no limit; no file exceeds it
}

// File is one finished CSV file.
type File struct {
	Name   string
	Format string // "csv" or "csv.gz"
	Rows   int64
	Bytes  int64
	SHA256 string
}

// gzipTail bounds the bytes a gzip stream adds after a flush: the final
// block and the trailer.
const gzipTail = 64

// Writer writes records to a sequence of CSV files, each with a header.
type Writer struct {
	opts   Options
	header []byte
	files  []File

	f       *os.File
	tmp     string
	count   countingHash
	bw      *bufio.Writer
	gz      *gzip.Writer
	rows    int64
	in      int64 // bytes into the gzip stream (or file)
	inFlush int64 // in at the last flush of the gzip stream
}

// NewWriter returns a writer for records of the given columns.
func NewWriter(cols []column.Column, opts Options) (*Writer, error) {
	names := make([][]byte, len(cols))
	for i, c := range cols {
		names[i] = []byte(c.Name)
	}
	if opts.Name != "" && (opts.MaxRowsPerFile != 0 || opts.MaxFileBytes != 0) {
		return nil, fmt.Errorf("csv file %s: a fixed name cannot be split", opts.Name)
	}
	w := &Writer{opts: opts, header: spill.AppendRecord(nil, names)}
	if opts.MaxFileBytes > 0 && w.limitFor(int64(len(w.header))) > opts.MaxFileBytes {
		return nil, fmt.Errorf("--max-file-bytes %d is smaller than the CSV header", opts.MaxFileBytes)
	}
	return w, nil
}

func (w *Writer) format() string {
	if w.opts.Gzip {
		return "csv.gz"
	}
	return "csv"
}

// limitFor is the most a file can come to with n more bytes of input:
// deflate never grows its input by more than a few bytes per block, so what
// went into the gzip stream since its last flush bounds what it still holds.
func (w *Writer) limitFor(n int64) int64 {
	if !w.opts.Gzip {
		return w.count.n + n
	}
	return w.count.n + (w.in + n - w.inFlush) + gzipTail
}

// fits reports whether n more bytes fit under MaxFileBytes, flushing the
// gzip stream to learn its true size when the bound says no.
func (w *Writer) fits(n int64) (bool, error) {
	if w.opts.MaxFileBytes <= 0 || w.limitFor(n) <= w.opts.MaxFileBytes {
		return true, nil
	}
	if w.gz == nil || w.in == w.inFlush {
		return false, nil
	}
	if err := w.gz.Flush(); err != nil {
		return false, err
	}
	w.inFlush = w.in
	return w.limitFor(n) <= w.opts.MaxFileBytes, nil
}

// WriteRecord writes one record, given as its CSV bytes with line end.
func (w *Writer) WriteRecord(rec []byte) error {
	if w.f != nil && w.opts.MaxRowsPerFile > 0 && w.rows >= w.opts.MaxRowsPerFile {
		if err := w.finish(); err != nil {
			return err
		}
	}
	for {
		if w.f == nil {
			if err := w.start(); err != nil {
				return err
			}
		}
		ok, err := w.fits(int64(len(rec)))
		if err != nil {
			return fmt.Errorf("write %s: %w", w.name(len(w.files)+1), err)
		}
		if ok {
			break
		}
		if w.rows == 0 {
			return fmt.Errorf("a row of %d bytes does not fit in a file of --max-file-bytes %d", len(rec), w.opts.MaxFileBytes)
		}
		if err := w.finish(); err != nil {
			return err
		}
	}
	w.rows++
	return w.write(rec)
}

func (w *Writer) write(p []byte) error {
	w.in += int64(len(p))
	if w.gz != nil {
		_, err := w.gz.Write(p)
		return err
	}
	_, err := w.count.Write(p)
	return err
}

func (w *Writer) name(seq int) string {
	if w.opts.Name != "" {
		return w.opts.Name
	}
	return fmt.Sprintf("%s-%04d.%s", w.opts.Prefix, seq, w.format())
}

func (w *Writer) start() error {
	name := w.name(len(w.files) + 1)
	w.tmp = filepath.Join(w.opts.Dir, "."+name+".tmp")
	f, err := os.Create(w.tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	w.f = f
	// [gzip ->] count and hash -> buffer -> file
	w.bw = bufio.NewWriterSize(f, 256<<10)
	w.count = countingHash{h: sha256.New(), w: w.bw}
	w.rows, w.in, w.inFlush = 0, 0, 0
	if w.opts.Gzip {
		// No name or time in the header: same data, same bytes.
		w.gz, err = gzip.NewWriterLevel(&w.count, gzip.DefaultCompression)
		if err != nil {
			return err
		}
	}
	return w.write(w.header)
}

func (w *Writer) finish() error {
	name := w.name(len(w.files) + 1)
	if w.gz != nil {
		if err := w.gz.Close(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		w.gz = nil
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	w.f = nil
	if err := os.Rename(w.tmp, filepath.Join(w.opts.Dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	w.files = append(w.files, File{Name: name, Format: w.format(), Rows: w.rows, Bytes: w.count.n, SHA256: hex.EncodeToString(w.count.h.Sum(nil))})
	return nil
}

// Close finishes the last file and returns every file written. An export
// without rows gives one file with the header only.
func (w *Writer) Close() ([]File, error) {
	if w.f == nil && len(w.files) == 0 {
		if err := w.start(); err != nil {
			return nil, err
		}
	}
	if w.f != nil {
		if err := w.finish(); err != nil {
			w.Abort()
			return nil, err
		}
	}
	return w.files, nil
}

// Abort removes the partial file and every finished one.
func (w *Writer) Abort() {
	if w.f != nil {
		_ = w.f.Close()
		_ = os.Remove(w.tmp)
		w.f = nil
	}
	for _, f := range w.files {
		_ = os.Remove(filepath.Join(w.opts.Dir, f.Name))
	}
	w.files = nil
}

// countingHash counts and hashes what reaches the file.
type countingHash struct {
	h hash.Hash
	w io.Writer
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}
