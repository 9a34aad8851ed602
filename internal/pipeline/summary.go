package pipeline

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/exporter-dev/exporter/internal/agg"
	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/csvfile"
	"github.com/exporter-dev/exporter/internal/manifest"
	"github.com/exporter-dev/exporter/internal/spill"
	"github.com/exporter-dev/exporter/internal/xlsx"
)

// summaryOutput aggregates the rows as they stream through and writes the
// summary files (PREFIX-summary.xlsx, PREFIX-summary.csv) at the end.
type summaryOutput struct {
	agg *agg.Aggregator
	cfg Config
	dir string
	log *slog.Logger
}

func newSummary(cols []column.Column, cfg Config, dir string, log *slog.Logger) (*summaryOutput, error) {
	tmp := filepath.Join(dir, "..", "agg")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, &OutputError{Err: fmt.Errorf("aggregation folder: %w", err)}
	}
	a, err := agg.New(agg.Config{
		Columns: cols, GroupBy: cfg.GroupBy, Aggs: cfg.Aggs, MemoryBudget: cfg.AggMemory, TmpDir: tmp,
		// Rows come in key order, so grouping by a prefix of the key sees
		// each group whole, one after the other: constant memory.
		Sorted: len(cfg.GroupBy) > 0 && len(cfg.GroupBy) <= len(cfg.Key) && slices.Equal(cfg.GroupBy, cfg.Key[:len(cfg.GroupBy)]),
	})
	if err != nil {
		return nil, err
	}
	return &summaryOutput{agg: a, cfg: cfg, dir: dir, log: log}, nil
}

func (s *summaryOutput) output() *output {
	return &output{
		writeChunk: func(path string) error {
			return eachRecord(path, func(fields [][]byte, _ []byte) error { return s.agg.Add(fields) })
		},
		close:     func() ([]manifest.File, error) { return nil, nil },
		abort:     func() {},
		truncated: func() int64 { return 0 },
	}
}

// finish writes the summary in every requested format and returns its files
// and the grand totals.
func (s *summaryOutput) finish() ([]manifest.File, *manifest.Totals, error) {
	cols := s.agg.Columns()
	type sink struct {
		write func(row [][]byte) error
		close func() ([]manifest.File, error)
		abort func()
	}
	var sinks []sink
	abortAll := func() {
		for _, k := range sinks {
			k.abort()
		}
	}
	for _, format := range dedupe(s.cfg.Formats) {
		name := s.cfg.Prefix + "-summary." + format
		switch format {
		case FormatXLSX:
			w, err := xlsx.NewWriter(cols, xlsx.Options{Dir: s.dir, Name: name, SheetName: "Summary", TmpDir: s.dir, Logger: s.log})
			if err != nil {
				abortAll()
				return nil, nil, &OutputError{Err: err}
			}
			sinks = append(sinks, sink{
				write: w.WriteRow,
				close: func() ([]manifest.File, error) {
					files, err := w.Close()
					return xlsxManifest(files, "summary"), err
				},
				abort: w.Abort,
			})
		case FormatCSV, FormatCSVGz:
			w, err := csvfile.NewWriter(cols, csvfile.Options{Dir: s.dir, Name: name, Gzip: format == FormatCSVGz})
			if err != nil {
				abortAll()
				return nil, nil, &OutputError{Err: err}
			}
			var buf []byte
			sinks = append(sinks, sink{
				write: func(row [][]byte) error {
					buf = spill.AppendRecord(buf[:0], row)
					return w.WriteRecord(buf)
				},
				close: func() ([]manifest.File, error) {
					files, err := w.Close()
					return csvManifest(files, "summary"), err
				},
				abort: w.Abort,
			})
		}
	}
	err := s.agg.Finish(func(row [][]byte) error {
		for _, k := range sinks {
			if err := k.write(row); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		abortAll()
		return nil, nil, fmt.Errorf("summary: %w", err)
	}
	var files []manifest.File
	for _, k := range sinks {
		fs, err := k.close()
		if err != nil {
			abortAll()
			return nil, nil, &OutputError{Err: fmt.Errorf("summary: %w", err)}
		}
		files = append(files, fs...)
	}
	t := s.agg.Totals()
	totals := &manifest.Totals{Rows: t.Rows, Sums: map[string]*string{}}
	for _, cs := range t.Sums {
		if cs.Sum == "" {
			totals.Sums[cs.Column] = nil
			continue
		}
		v := cs.Sum
		totals.Sums[cs.Column] = &v
	}
	return files, totals, nil
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
