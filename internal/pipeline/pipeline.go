// Package pipeline runs one export: it fetches chunks, writes every output
// format from the spilled chunks while the fetch goes on, delivers the
// finished files and writes the manifest last.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exporter-dev/exporter/internal/agg"
	"github.com/exporter-dev/exporter/internal/chunk"
	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/deliver"
	"github.com/exporter-dev/exporter/internal/manifest"
	"github.com/exporter-dev/exporter/internal/spill"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// Formats an export can be written in.
const (
	FormatXLSX  = "xlsx"
	FormatCSV   = "csv"
	FormatCSVGz = "csv.gz"
)

// Config is one export.
type Config struct {
	Query           string
	Key             []string
	ChunkRows       int
	Location        *time.Location
	Formats         []string
	Prefix          string
	MaxRowsPerSheet int
	MaxRowsPerFile  int64
	MaxFileBytes    int64
	// WorkDir is a private folder for spill and staged files; the caller
	// creates and removes it.
	WorkDir      string
	Destinations []deliver.Destination
	Logger       *slog.Logger

	// GroupBy and Aggs ask for a summary computed while the rows stream
	// through; AggMemory bounds its state before it spills.
	GroupBy   []string
	Aggs      []agg.Spec
	AggMemory int64

	// PresignTTL, when set, puts presigned download URLs of the files into
	// the manifest of each destination that can make them (S3).
	PresignTTL time.Duration
}

// Progress is read by a progress line while the export runs.
type Progress struct {
	Phase   atomic.Value // string
	Fetched atomic.Int64
	Written atomic.Int64 // rows written by the slowest format
}

func (p *Progress) setPhase(s string) {
	if p != nil {
		p.Phase.Store(s)
	}
}

// Run runs the export on conn and returns its manifest and what each
// destination got. An error before delivery leaves nothing under a final
// name and no manifest. A destination that fails part way keeps the files
// that arrived whole and verified, but gets no manifest: a re-run skips
// those files and sends the rest.
func Run(ctx context.Context, conn *pgx.Conn, cfg Config, prog *Progress) (*Result, error) {
	if prog == nil {
		prog = &Progress{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &manifest.Manifest{
		Version:     manifest.Version,
		StartedAt:   time.Now().UTC(),
		QuerySHA256: sha256Hex(cfg.Query),
		Key:         cfg.Key,
		TimeZone:    cfg.Location.String(),
	}
	spillDir := filepath.Join(cfg.WorkDir, "spill")
	stageDir := filepath.Join(cfg.WorkDir, "stage")
	for _, d := range []string{spillDir, stageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, &OutputError{Err: fmt.Errorf("work folder: %w", err)}
		}
	}

	prog.setPhase("prepare")
	f, err := chunk.Open(ctx, conn, chunk.Config{
		Query: cfg.Query, Key: cfg.Key, ChunkRows: cfg.ChunkRows, Location: cfg.Location, Dir: spillDir, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	defer f.Close(ctx)
	cols := f.Columns()
	for _, c := range cols {
		m.Columns = append(m.Columns, manifest.Column{Name: c.Name, Type: c.Type})
	}
	mode, reason := f.Mode()
	m.Fetch.Mode = string(mode)
	if reason != "" {
		m.Warnings = append(m.Warnings, "fetch: "+reason)
	}

	outs, err := newOutputs(cols, cfg, stageDir, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, o := range outs {
				o.abort()
			}
		}
	}()

	var summary *summaryOutput
	if len(cfg.Aggs) > 0 {
		if summary, err = newSummary(cols, cfg, stageDir, log); err != nil {
			return nil, err
		}
		defer summary.agg.Close()
		outs = append(outs, summary.output())
	}

	chunks := newChunkLog(len(outs))
	g, gctx := errgroup.WithContext(ctx)
	prog.setPhase("fetch")
	g.Go(func() error {
		rows, err := f.Run(gctx, func(c chunk.Chunk) error {
			prog.Fetched.Add(c.Rows)
			m.Fetch.Chunks++
			chunks.add(c)
			return nil
		})
		chunks.close(err)
		if err != nil {
			return err
		}
		m.Rows = rows
		prog.setPhase("write")
		return nil
	})
	written := make([]atomic.Int64, len(outs))
	for i, o := range outs {
		g.Go(func() error {
			return chunks.each(gctx, i, func(c chunk.Chunk) error {
				if err := o.writeChunk(c.Path); err != nil {
					var ae *agg.ConfigError
					if errors.As(err, &ae) || gctx.Err() != nil {
						return err
					}
					return &OutputError{Err: err}
				}
				n := written[i].Add(c.Rows)
				minWritten := n
				for j := range written {
					minWritten = min(minWritten, written[j].Load())
				}
				prog.Written.Store(minWritten)
				return nil
			})
		})
	}
	if err = g.Wait(); err != nil {
		return nil, err
	}
	if err = f.Close(ctx); err != nil {
		return nil, err
	}

	prog.setPhase("finish")
	for _, o := range outs {
		files, err2 := o.close()
		if err2 != nil {
			err = err2
			return nil, err
		}
		m.Files = append(m.Files, files...)
		if n := o.truncated(); n > 0 {
			m.TruncatedCells += n
			m.Warnings = append(m.Warnings, fmt.Sprintf("xlsx: %d text cells were longer than Excel's 32,767 characters and were truncated; the CSV output has them whole", n))
		}
	}
	if summary != nil {
		files, totals, err2 := summary.finish()
		if err2 != nil {
			err = err2
			return nil, err
		}
		m.Files = append(m.Files, files...)
		m.Totals = totals
	}
	m.FinishedAt = time.Now().UTC()

	prog.setPhase("deliver")
	res := &Result{Manifest: m}
	failed := 0
	for _, d := range cfg.Destinations {
		dl := deliverTo(ctx, d, stageDir, m, cfg.PresignTTL)
		res.Deliveries = append(res.Deliveries, dl)
		if dl.Err != nil {
			failed++
			log.Error("delivery failed", "destination", d.String(), "error", dl.Err.Error())
			continue
		}
		log.Info("delivered", "destination", d.String(), "delivered", len(dl.Delivered), "skipped", len(dl.Skipped))
	}
	if failed > 0 {
		err = &OutputError{Err: fmt.Errorf("delivery failed to %d of %d destinations: %w", failed, len(cfg.Destinations), firstErr(res.Deliveries))}
		return res, err
	}
	return res, nil
}

// writeFileSync writes a file and syncs it to disk.
func writeFileSync(path string, body []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Result is a finished export: its manifest and what each destination got.
type Result struct {
	Manifest   *manifest.Manifest
	Deliveries []Delivery
}

// Delivery is what happened at one destination.
type Delivery struct {
	Destination string
	Delivered   []string          // names put, the manifest last
	Skipped     []string          // already there with the same size and SHA-256
	URLs        map[string]string // presigned download URLs, by name
	Err         error             // why the destination failed, nil when it did not
}

func firstErr(ds []Delivery) error {
	for _, d := range ds {
		if d.Err != nil {
			return d.Err
		}
	}
	return nil
}

// contentType is the MIME type of a file format.
func contentType(format string) string {
	switch format {
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatCSVGz:
		return "application/gzip"
	case "json":
		return "application/json"
	}
	return "application/octet-stream"
}

// deliverTo puts the staged files into d and then the manifest. An earlier
// manifest is taken down first, so the destination never shows a manifest
// beside files it does not describe. A file d already holds with the same
// size and SHA-256 is skipped, so a re-run after a partial failure sends
// only what is missing. Each file arrives whole or not at all; the
// manifest, written last, marks the delivery complete.
func deliverTo(ctx context.Context, d deliver.Destination, stageDir string, m *manifest.Manifest, presign time.Duration) Delivery {
	dl := Delivery{Destination: d.String()}
	fail := func(format string, args ...any) Delivery {
		dl.Err = fmt.Errorf(format, args...)
		return dl
	}
	if rm, ok := deliver.As[deliver.Remover](d); ok {
		if err := deliver.Do(ctx, d, "remove "+manifest.Name, func() error { return rm.Remove(ctx, manifest.Name) }); err != nil {
			return fail("remove earlier %s: %w", manifest.Name, err)
		}
	}
	checker, canCheck := deliver.As[deliver.Checker](d)
	presigner, canPresign := deliver.As[deliver.Presigner](d)
	dm := *m
	dm.Files = slices.Clone(m.Files)
	for i, f := range dm.Files {
		src := deliver.File{Path: filepath.Join(stageDir, f.Name), Size: f.Bytes, SHA256: f.SHA256, ContentType: contentType(f.Format)}
		has := false
		if canCheck {
			if err := deliver.Do(ctx, d, "check "+f.Name, func() (err error) { has, err = checker.Has(ctx, f.Name, src); return err }); err != nil {
				return fail("check %s: %w", f.Name, err)
			}
		}
		if has {
			dl.Skipped = append(dl.Skipped, f.Name)
		} else {
			if err := d.Put(ctx, f.Name, src); err != nil {
				return fail("put %s: %w", f.Name, err)
			}
			dl.Delivered = append(dl.Delivered, f.Name)
		}
		if presign > 0 && canPresign {
			url, err := presigner.Presign(ctx, f.Name, src)
			if err != nil {
				return fail("presign %s: %w", f.Name, err)
			}
			dm.Files[i].URL = url
			if dl.URLs == nil {
				dl.URLs = map[string]string{}
			}
			dl.URLs[f.Name] = url
		}
	}
	body, err := dm.Marshal()
	if err != nil {
		return fail("manifest: %w", err)
	}
	path := filepath.Join(stageDir, fmt.Sprintf(".manifest-%p.json", d))
	if err := writeFileSync(path, body); err != nil {
		return fail("write manifest: %w", err)
	}
	defer os.Remove(path)
	sum := sha256.Sum256(body)
	src := deliver.File{Path: path, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ContentType: contentType("json")}
	if err := d.Put(ctx, manifest.Name, src); err != nil {
		return fail("put %s: %w", manifest.Name, err)
	}
	dl.Delivered = append(dl.Delivered, manifest.Name)
	return dl
}

// OutputError is a failure to write or deliver output files.
type OutputError struct{ Err error }

func (e *OutputError) Error() string { return e.Err.Error() }
func (e *OutputError) Unwrap() error { return e.Err }

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// output is one consumer of the spilled chunks: a format's sink, or the
// summary's aggregator.
type output struct {
	*sink
	writeChunk func(path string) error
}

func newOutputs(cols []column.Column, cfg Config, dir string, log *slog.Logger) ([]*output, error) {
	sinks, err := openSinks(cols, cfg.Formats, sinkOptions{
		kind: "data", dir: dir, prefix: cfg.Prefix, maxRowsPerSheet: cfg.MaxRowsPerSheet,
		maxRowsPerFile: cfg.MaxRowsPerFile, maxFileBytes: cfg.MaxFileBytes, log: log,
	})
	if err != nil {
		return nil, err
	}
	outs := make([]*output, len(sinks))
	for i, s := range sinks {
		outs[i] = &output{sink: s, writeChunk: func(path string) error { return eachRecord(path, s.write) }}
	}
	return outs, nil
}

// eachRecord calls fn with every record of a chunk file.
func eachRecord(path string, fn func(fields [][]byte, raw []byte) error) error {
	r, err := spill.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		fields, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(path), err)
		}
		if err := fn(fields, r.Raw()); err != nil {
			return err
		}
	}
}

// chunkLog hands every fetched chunk, in order, to each of n consumers, and
// removes a chunk's spill file once all of them are done with it.
type chunkLog struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks []chunk.Chunk
	done   []int // consumers finished with chunks[i]
	closed bool
	err    error
	n      int
}

func newChunkLog(consumers int) *chunkLog {
	l := &chunkLog{n: consumers}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *chunkLog) add(c chunk.Chunk) {
	l.mu.Lock()
	l.chunks = append(l.chunks, c)
	l.done = append(l.done, 0)
	l.mu.Unlock()
	l.cond.Broadcast()
}

func (l *chunkLog) close(err error) {
	l.mu.Lock()
	l.closed, l.err = true, err
	l.mu.Unlock()
	l.cond.Broadcast()
}

// each calls fn for every chunk until the log is closed. A cancelled ctx
// stops it at the next chunk.
func (l *chunkLog) each(ctx context.Context, _ int, fn func(chunk.Chunk) error) error {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock() // a waiter between its check of ctx and Wait would miss a broadcast without the lock
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	for i := 0; ; i++ {
		l.mu.Lock()
		for i >= len(l.chunks) && !l.closed && ctx.Err() == nil {
			l.cond.Wait()
		}
		if err := ctx.Err(); err != nil {
			l.mu.Unlock()
			return err
		}
		if i >= len(l.chunks) {
			err := l.err
			l.mu.Unlock()
			return err
		}
		c := l.chunks[i]
		l.mu.Unlock()
		if err := fn(c); err != nil {
			return err
		}
		l.mu.Lock()
		l.done[i]++
		last := l.done[i] == l.n
		l.mu.Unlock()
		if last {
			_ = os.Remove(c.Path)
		}
	}
}
