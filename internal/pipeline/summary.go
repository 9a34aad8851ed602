package pipeline

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/exporter-dev/exporter/internal/agg"
	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/manifest"
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
		sink: &sink{
			close:     func() ([]manifest.File, error) { return nil, nil },
			abort:     func() {},
			truncated: func() int64 { return 0 },
		},
		writeChunk: func(path string) error {
			return eachRecord(path, func(fields [][]byte, _ []byte) error { return s.agg.Add(fields) })
		},
	}
}

// finish writes the summary in every requested format and returns its files
// and the grand totals.
func (s *summaryOutput) finish() ([]manifest.File, *manifest.Totals, error) {
	sinks, err := openSinks(s.agg.Columns(), s.cfg.Formats, sinkOptions{
		kind: "summary", dir: s.dir, prefix: s.cfg.Prefix + "-summary", single: true, sheetName: "Summary", log: s.log,
	})
	if err != nil {
		return nil, nil, err
	}
	abortAll := func() {
		for _, k := range sinks {
			k.abort()
		}
	}
	err = s.agg.Finish(func(row [][]byte) error {
		for _, k := range sinks {
			if err := k.write(row, nil); err != nil {
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
			return nil, nil, fmt.Errorf("summary: %w", err)
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
