package pipeline

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/csvfile"
	"github.com/exporter-dev/exporter/internal/manifest"
	"github.com/exporter-dev/exporter/internal/spill"
	"github.com/exporter-dev/exporter/internal/xlsx"
)

// sink is the files of one format being written: rows go in, finished
// files come out. The data outputs and the summary both write through it.
type sink struct {
	// write takes a row's fields and, when it has them, the row's CSV
	// bytes (a spilled record), which CSV output copies as they are.
	write     func(fields [][]byte, raw []byte) error
	close     func() ([]manifest.File, error)
	abort     func()
	truncated func() int64
}

// sinkOptions say what a sink writes and how it splits.
type sinkOptions struct {
	format    string
	kind      string // manifest kind: data or summary
	dir       string
	prefix    string // files PREFIX-0001.EXT, PREFIX-0002.EXT, ...
	single    bool   // instead one file PREFIX.EXT, not split
	sheetName string // XLSX sheets; default Sheet1, Sheet2, ...

	maxRowsPerSheet int
	maxRowsPerFile  int64
	maxFileBytes    int64
	log             *slog.Logger
}

func openSink(cols []column.Column, o sinkOptions) (*sink, error) {
	prefix, name := o.prefix, ""
	if o.single {
		prefix, name = "", o.prefix+"."+o.format
	}
	switch o.format {
	case FormatXLSX:
		w, err := xlsx.NewWriter(cols, xlsx.Options{
			Dir: o.dir, Prefix: prefix, Name: name, SheetName: o.sheetName, MaxRowsPerSheet: o.maxRowsPerSheet,
			MaxRowsPerFile: o.maxRowsPerFile, MaxFileBytes: o.maxFileBytes, TmpDir: o.dir, Logger: o.log,
		})
		if err != nil {
			return nil, &OutputError{Err: err}
		}
		return &sink{
			write: func(fields [][]byte, _ []byte) error { return w.WriteRow(fields) },
			close: func() ([]manifest.File, error) {
				files, err := w.Close()
				if err != nil {
					return nil, &OutputError{Err: err}
				}
				return xlsxManifest(files, o.kind), nil
			},
			abort:     w.Abort,
			truncated: w.Truncated,
		}, nil
	case FormatCSV, FormatCSVGz:
		w, err := csvfile.NewWriter(cols, csvfile.Options{
			Dir: o.dir, Prefix: prefix, Name: name, Gzip: o.format == FormatCSVGz,
			MaxRowsPerFile: o.maxRowsPerFile, MaxFileBytes: o.maxFileBytes,
		})
		if err != nil {
			return nil, &OutputError{Err: err}
		}
		var buf []byte
		return &sink{
			write: func(fields [][]byte, raw []byte) error {
				if raw == nil {
					buf = spill.AppendRecord(buf[:0], fields)
					raw = buf
				}
				return w.WriteRecord(raw)
			},
			close: func() ([]manifest.File, error) {
				files, err := w.Close()
				if err != nil {
					return nil, &OutputError{Err: err}
				}
				return csvManifest(files, o.kind), nil
			},
			abort:     w.Abort,
			truncated: func() int64 { return 0 },
		}, nil
	}
	return nil, fmt.Errorf("unknown format %q", o.format)
}

// openSinks opens one sink per distinct format, closing what it opened
// when one fails.
func openSinks(cols []column.Column, formats []string, o sinkOptions) ([]*sink, error) {
	var sinks []*sink
	for _, format := range dedupe(formats) {
		o.format = format
		s, err := openSink(cols, o)
		if err != nil {
			for _, s := range sinks {
				s.abort()
			}
			return nil, err
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}

func dedupe(formats []string) []string {
	var out []string
	for _, f := range formats {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func xlsxManifest(files []xlsx.File, kind string) []manifest.File {
	var out []manifest.File
	for _, f := range files {
		mf := manifest.File{Name: f.Name, Format: FormatXLSX, Kind: kind, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256}
		for _, s := range f.Sheets {
			mf.Sheets = append(mf.Sheets, manifest.Sheet{Name: s.Name, Rows: s.Rows})
		}
		out = append(out, mf)
	}
	return out
}

func csvManifest(files []csvfile.File, kind string) []manifest.File {
	var out []manifest.File
	for _, f := range files {
		out = append(out, manifest.File{Name: f.Name, Format: f.Format, Kind: kind, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256})
	}
	return out
}
