package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Benchmark cases.
const (
	caseExporterXLSX = "exporter-xlsx"
	caseExporterCSV  = "exporter-csv"
	// caseExporterAgg is a CSV export with a high-cardinality summary:
	// 500,000 groups (fewer when there are fewer rows).
	caseExporterAgg = "exporter-agg"
	caseNaiveXLSX   = "naive-xlsx"
	casePSQLCSV     = "psql-csv"
)

type harness struct {
	dsn       string
	exporter  string // exporter binary
	naive     string // naive baseline binary
	psql      string // psql binary, "" to skip the peer
	chunkRows int    // --chunk-rows for the exporter, 0 for its default
	workdir   string
	keep      bool
	logf      func(format string, a ...any)
}

// result is one measured run.
type result struct {
	Case    string
	Rows    int64
	Elapsed time.Duration
	MaxRSS  int64 // peak resident set size of the child, KiB
	Bytes   int64 // size of the output files (manifest.json excluded)
	Err     error
}

// runCase runs case c on the n-row table as a child process and measures
// it. The output is deleted after its size is taken (unless h.keep).
func (h *harness) runCase(ctx context.Context, c string, n int64) result {
	r := result{Case: c, Rows: n}
	runDir := filepath.Join(h.workdir, "runs", fmt.Sprintf("%d-%s", n, c))
	outDir := filepath.Join(runDir, "out")
	tmpDir := filepath.Join(runDir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		r.Err = fmt.Errorf("create run directory: %w", err)
		return r
	}
	defer func() {
		if !h.keep {
			_ = os.RemoveAll(outDir)
			_ = os.RemoveAll(tmpDir)
		}
	}()

	var (
		prog  string
		args  []string
		check func(stdout string) error
	)
	switch c {
	case caseExporterXLSX, caseExporterCSV:
		prog = h.exporter
		args = h.exporterArgs(outDir, "SELECT * FROM "+table, strings.TrimPrefix(c, "exporter-"))
		check = func(string) error { return checkManifest(outDir, n) }
	case caseExporterAgg:
		prog = h.exporter
		args = append(h.exporterArgs(outDir, "SELECT *, id % 500000 AS grp FROM "+table, "csv"),
			"--group-by", "grp",
			"--agg", "count(*)", "--agg", "sum(price)", "--agg", "avg(price)", "--agg", "min(created_at)",
			"--agg", "count_distinct(region)", "--agg", "approx_count_distinct(code)", "--agg", "p95(qty)",
		)
		check = func(string) error { return checkManifest(outDir, n) }
	case caseNaiveXLSX:
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			r.Err = fmt.Errorf("create output directory: %w", err)
			return r
		}
		prog = h.naive
		args = []string{
			"-dsn", h.dsn,
			"-query", "SELECT * FROM " + table + " ORDER BY id",
			"-out", filepath.Join(outDir, "naive.xlsx"),
		}
		check = func(stdout string) error { return checkCount(stdout, "rows", n) }
	case casePSQLCSV:
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			r.Err = fmt.Errorf("create output directory: %w", err)
			return r
		}
		file := filepath.Join(outDir, "psql.csv")
		prog = h.psql
		args = []string{"-X", "-v", "ON_ERROR_STOP=1", "-d", h.dsn, "-c",
			`\copy (SELECT * FROM ` + table + ` ORDER BY id) TO '` +
				strings.ReplaceAll(file, "'", "''") + `' CSV HEADER`}
		check = func(stdout string) error { return checkCount(stdout, "COPY", n) }
	default:
		r.Err = fmt.Errorf("unknown case %q", c)
		return r
	}

	stdoutPath := filepath.Join(runDir, "stdout.log")
	stderrPath := filepath.Join(runDir, "stderr.log")
	elapsed, maxRSS, err := runChild(ctx, prog, args, childEnv(tmpDir), stdoutPath, stderrPath)
	r.Elapsed, r.MaxRSS = elapsed, maxRSS
	if err != nil {
		r.Err = fmt.Errorf("%s: %w%s", filepath.Base(prog), err, tail(stderrPath, 2000))
		return r
	}
	out, err := os.ReadFile(stdoutPath)
	if err != nil {
		r.Err = fmt.Errorf("read stdout: %w", err)
		return r
	}
	if err := check(string(out)); err != nil {
		r.Err = err
		return r
	}
	if r.Bytes, err = outputBytes(outDir); err != nil {
		r.Err = err
	}
	return r
}

// exporterArgs are the exporter's arguments for one run.
func (h *harness) exporterArgs(outDir, query, format string) []string {
	args := []string{"export",
		"--dsn", h.dsn,
		"--query", query,
		"--key", "id",
		"--out", outDir,
		"--format", format,
		"--name", "bench",
		"--progress", "never",
		"--log-format", "json",
	}
	if h.chunkRows > 0 {
		args = append(args, "--chunk-rows", strconv.Itoa(h.chunkRows))
	}
	return args
}

// runChild runs prog and returns its wall time and peak RSS in KiB.
func runChild(ctx context.Context, prog string, args, env []string, stdoutPath, stderrPath string) (time.Duration, int64, error) {
	stdout, err := os.Create(stdoutPath)
	if err != nil {
		return 0, 0, fmt.Errorf("create stdout log: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.Create(stderrPath)
	if err != nil {
		return 0, 0, fmt.Errorf("create stderr log: %w", err)
	}
	defer stderr.Close()

	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	var maxRSS int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = int64(ru.Maxrss) // KiB on Linux
		}
	}
	return elapsed, maxRSS, err
}

// childEnv is the environment without PG* variables (the DSN says it all)
// and with TMPDIR pointing into the run directory, so that temporary files
// (excelize's, for one) are cleaned up with the run.
func childEnv(tmpDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || k == "DATABASE_URL" || k == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "TMPDIR="+tmpDir)
}

// checkManifest checks that the exporter's manifest.json counts n rows.
func checkManifest(outDir string, n int64) error {
	b, err := os.ReadFile(filepath.Join(outDir, "manifest.json"))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	var m struct {
		Rows *int64 `json:"rows"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse manifest: %w", err)
	}
	if m.Rows == nil {
		return errors.New("manifest.json has no rows count")
	}
	if *m.Rows != n {
		return fmt.Errorf("manifest.json counts %d rows, want %d", *m.Rows, n)
	}
	return nil
}

// checkCount looks for a line "WORD N" in stdout and checks N == n.
func checkCount(stdout, word string, n int64) error {
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == word {
			got, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return fmt.Errorf("bad count line %q: %w", line, err)
			}
			if got != n {
				return fmt.Errorf("%d rows written, want %d", got, n)
			}
			return nil
		}
	}
	return fmt.Errorf("no %q line in the output: %q", word+" N", strings.TrimSpace(stdout))
}

// outputBytes sums the sizes of the regular files under dir, except
// manifest.json.
func outputBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || d.Name() == "manifest.json" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure output: %w", err)
	}
	if total == 0 {
		return 0, fmt.Errorf("no output files in %s", dir)
	}
	return total, nil
}

// tail returns the last n bytes of a file, formatted to follow an error.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	if s := strings.TrimSpace(string(b)); s != "" {
		return "\n--- end of " + path + " ---\n" + s
	}
	return ""
}
