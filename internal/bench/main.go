// Command bench is the export benchmark harness behind `make bench`. It is
// not a timed Go test: it starts a throwaway PostgreSQL (internal/pgtest),
// loads a 10-column table of N rows for each -rows value, and times each
// case as a separate child process so that the peak RSS (ru_maxrss) of every
// run is measured on its own:
//
//	exporter-xlsx  exporter export --format xlsx (default chunk rows)
//	exporter-csv   exporter export --format csv
//	exporter-agg   the same with a summary of 500,000 groups (--group-by on
//	               id % 500000, seven aggregates incl. count_distinct, p95)
//	naive-xlsx     internal/bench/naive: pgx rows.Values -> excelize
//	               StreamWriter.SetRow -> SaveAs, the typical application
//	psql-csv       psql \copy (...) TO FILE CSV HEADER, a CSV reference peer
//	               (with -peers, when psql is installed)
//
// It prints one line per run, then a markdown table for the README (also
// written to -o FILE). Outputs are deleted after their size is measured;
// the cluster and the work directory are removed on exit and on Ctrl-C
// unless -keep is given.
//
//	go run ./internal/bench -rows 20000,80000 -o bench.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/exporter-dev/exporter/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// db is the benchmark database; pgtmp (internal/pgtest/pgtmp) uses the same
// name, so `pgtmp dsn DIR` works on a cluster kept with -keep.
const db = "exporter"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil && interrupted:
		fmt.Fprintln(os.Stderr, "bench: interrupted:", err)
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	rows      []int64
	exporter  string
	keep      bool
	workdir   string
	out       string
	peers     bool
	chunkRows int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.String("rows", "1000000,4000000", "comma-separated row counts to benchmark (suffixes k and M allowed)")
	fs.StringVar(&o.exporter, "exporter", "", "exporter binary (default: build ./cmd/exporter into the work directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the PostgreSQL cluster running and keep the outputs and work directory")
	fs.StringVar(&o.workdir, "workdir", "", "parent of the work directory (default the system temp dir); outputs can take GBs")
	fs.StringVar(&o.out, "o", "", "also write the markdown table to this file")
	fs.BoolVar(&o.peers, "peers", true, "also run peer tools that are installed (psql \\copy to CSV)")
	fs.IntVar(&o.chunkRows, "chunk-rows", 0, "pass --chunk-rows N to the exporter (0: its default)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./internal/bench [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.rows, err = parseRows(*rows); err != nil {
		return nil, fmt.Errorf("-rows: %w", err)
	}
	if o.chunkRows < 0 {
		return nil, fmt.Errorf("-chunk-rows must not be negative")
	}
	return o, nil
}

// parseRows parses "1000000,4M,20k,1_000" into sorted, distinct counts.
func parseRows(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		if f == "" {
			continue
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(f, "k"), strings.HasSuffix(f, "K"):
			mult, f = 1000, f[:len(f)-1]
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mult, f = 1000000, f[:len(f)-1]
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 || n > 1<<40/mult {
			return nil, fmt.Errorf("bad row count %q", f)
		}
		out = append(out, n*mult)
	}
	if len(out) == 0 {
		return nil, errors.New("no row counts given")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench: "+format+"\n", a...)
	}

	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	modRoot, err := moduleRoot(ctx, goTool)
	if err != nil {
		return err
	}

	// Work directory: always a fresh one of ours, so removing it is safe.
	// The postgres OS user must be able to reach the cluster inside it.
	parent := o.workdir
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create -workdir: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "exporter-bench-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer func() {
		if o.keep {
			logf("kept work directory %s", dir)
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove work directory: %w", rerr)
		}
	}()
	logf("work directory %s", dir)

	h := &harness{workdir: dir, chunkRows: o.chunkRows, keep: o.keep, logf: logf}
	binDir := filepath.Join(dir, "bin")
	logf("building internal/bench/naive")
	if h.naive, err = goBuild(ctx, goTool, modRoot, binDir, "./internal/bench/naive"); err != nil {
		return err
	}
	if o.exporter == "" {
		logf("building cmd/exporter")
		if h.exporter, err = goBuild(ctx, goTool, modRoot, binDir, "./cmd/exporter"); err != nil {
			return err
		}
	} else {
		if h.exporter, err = filepath.Abs(o.exporter); err != nil {
			return fmt.Errorf("-exporter: %w", err)
		}
		if fi, err := os.Stat(h.exporter); err != nil {
			return fmt.Errorf("-exporter: %w", err)
		} else if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("-exporter: %s is not an executable file", h.exporter)
		}
	}
	if o.peers {
		if h.psql = findPSQL(); h.psql == "" {
			logf("psql not found: skipping the psql \\copy peer")
		}
	}
	cases := []string{caseExporterXLSX, caseExporterCSV, caseExporterAgg, caseNaiveXLSX}
	if h.psql != "" {
		cases = append(cases, casePSQLCSV)
	}

	logf("starting PostgreSQL")
	clusterDir := filepath.Join(dir, "pg")
	srv, err := pgtest.Start(ctx, clusterDir)
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	defer func() {
		if o.keep {
			logf("PostgreSQL left running: DSN %s; stop it with: go run ./internal/pgtest/pgtmp stop %s", srv.DSN(db), clusterDir)
			return
		}
		if serr := srv.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop PostgreSQL: %w", serr)
		}
	}()
	if err := srv.CreateDatabase(ctx, db); err != nil {
		return err
	}
	h.dsn = srv.DSN(db)
	env, err := describeEnv(ctx, h.dsn)
	if err != nil {
		return err
	}
	env.exporterArgs = "default"
	if o.chunkRows > 0 {
		env.exporterArgs = "--chunk-rows " + strconv.Itoa(o.chunkRows)
	}

	fmt.Fprintln(stdout, runHeader())
	var results []result
	for _, n := range o.rows {
		logf("loading %d rows", n)
		start := time.Now()
		if err := load(ctx, srv, db, n); err != nil {
			return err
		}
		logf("loaded %d rows in %.1fs", n, time.Since(start).Seconds())
		for _, c := range cases {
			logf("running %s on %d rows", c, n)
			r := h.runCase(ctx, c, n)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r.Err != nil {
				logf("%s on %d rows failed: %v", c, n, r.Err)
			}
			fmt.Fprintln(stdout, r.line())
			results = append(results, r)
		}
	}

	md := markdown(env, results)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write -o file: %w", err)
		}
		logf("wrote %s", o.out)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs failed", failed, len(results))
	}
	return nil
}

// moduleRoot returns the directory of the main module (the repository).
func moduleRoot(ctx context.Context, goTool string) (string, error) {
	out, err := exec.CommandContext(ctx, goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the exporter module: run from the repository (go run ./internal/bench)")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds pkg (relative to modRoot) into binDir and returns the
// binary's path.
func goBuild(ctx context.Context, goTool, modRoot, binDir, pkg string) (string, error) {
	out := filepath.Join(binDir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	cmd.Dir = modRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

func findPSQL() string {
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	if fi, err := os.Stat("/usr/bin/psql"); err == nil && fi.Mode()&0o111 != 0 {
		return "/usr/bin/psql"
	}
	return ""
}

// envInfo describes the machine for the markdown report.
type envInfo struct {
	postgres     string
	cpu          string
	cpus         int
	goVersion    string
	exporterArgs string
}

func describeEnv(ctx context.Context, dsn string) (envInfo, error) {
	e := envInfo{cpu: cpuModel(), cpus: runtime.NumCPU(), goVersion: runtime.Version()}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return e, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&e.postgres); err != nil {
		return e, fmt.Errorf("server version: %w", err)
	}
	if i := strings.IndexByte(e.postgres, ' '); i > 0 {
		e.postgres = e.postgres[:i] // "15.8 (Debian 15.8-0+deb12u1)" -> "15.8"
	}
	return e, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}
