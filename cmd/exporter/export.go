package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/exporter-dev/exporter/internal/agg"
	"github.com/exporter-dev/exporter/internal/pipeline"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
)

// maxSheetRows is Excel's row limit less the header row.
const maxSheetRows = 1048575

type exportOptions struct {
	DSN             string
	Query           string
	QueryFile       string
	Key             []string
	Out             []string
	Formats         []string
	ChunkRows       int
	MaxRowsPerSheet int
	MaxRowsPerFile  int64
	MaxFileBytes    string
	Name            string
	TimeZone        string
	WorkDir         string
	GroupBy         []string
	Aggs            []string
	AggMemory       string
	destinationFlags

	maxFileBytes int64
	location     *time.Location
	aggs         []agg.Spec
	aggMemory    int64
}

func newExportCmd(a *app, runF func(context.Context, *exportOptions) error) *cobra.Command {
	opts := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export --query SQL --key COL --out DEST",
		Short: "Export a query's rows to XLSX and CSV files with a manifest",
		Long: `Export runs the query inside one REPEATABLE READ READ ONLY transaction,
fetching its rows in chunks ordered by the key columns, which must be
non-NULL and unique together. Each chunk is spilled to a CSV file as it
arrives; XLSX and CSV outputs are written from the spill while the fetch
goes on. The files are then delivered to every --out (a local folder,
s3://bucket/prefix/ or sftp://user@host/path/): each appears under its
final name only when complete, a file already there with the same size
and SHA-256 is skipped, transient failures are retried, and
manifest.json goes last.

The DSN comes from --dsn, else DATABASE_URL, else libpq's PG* variables
(PGHOST, PGUSER, PGPASSWORD, ...).

XLSX cells are typed: numbers where Excel holds them exactly (at most 15
significant digits), otherwise text with every digit; dates and timestamps
as Excel dates in --timezone; booleans as booleans; NULL as an empty cell.
CSV is RFC 4180 UTF-8 with a header: timestamps RFC 3339 in --timezone,
NULL as an empty field, the empty string as "".

With --agg, a summary is computed while the rows stream through, so its
totals agree with the delivered rows by construction: one row per
--group-by group (or one grand-total row), sorted by the group columns,
written as PREFIX-summary.xlsx (sheet Summary) and PREFIX-summary.csv.
sum is exact decimal arithmetic; count_distinct is exact;
approx_count_distinct (HyperLogLog, within 2%) and pNN (DDSketch, within
1%) are sketches. State past --agg-memory spills to disk. The manifest
carries the grand totals.

` + exitCodesHelp,
		Example: `  # One workbook of orders, keyed by id, in ./out
  exporter export --dsn postgres://report@db.internal/shop \
    --query 'SELECT * FROM orders' --key id --out ./out

  # A large report as XLSX and gzipped CSV, 200,000 rows per file, Paris time
  DATABASE_URL=postgres://report@db/shop exporter export \
    --query-file monthly.sql --key region,order_id \
    --format xlsx --format csv.gz --max-rows-per-file 200000 \
    --timezone Europe/Paris --name monthly-2025-01 --out /srv/exports/acme

  # With a summary: totals per region, in PREFIX-summary.xlsx beside the data
  exporter export --query-file orders.sql --key id --out ./out \
    --group-by region --agg 'count(*)' --agg 'sum(amount)' --agg 'avg(amount)' \
    --agg 'count_distinct(customer_id)' --agg 'p95(amount)'

  # Deliver to a client's S3 bucket and SFTP drop folder, with download links
  exporter export --query-file nightly.sql --key id --format xlsx \
    --out s3://acme-exports/nightly/ --presign 72h \
    --out sftp://acme@sftp.acme.example/inbox/ --sftp-key ~/.ssh/acme_ed25519

  # From cron: JSON logs, no progress line
  exporter export --query-file nightly.sql --key id --out /srv/drop --log-format json --progress never`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.resolve(a, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runExport(cmd.Context(), a, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.DSN, "dsn", "", "PostgreSQL connection string (default $DATABASE_URL, then PG* variables)")
	fl.StringVar(&opts.Query, "query", "", "SQL query to export")
	fl.StringVar(&opts.QueryFile, "query-file", "", "file holding the SQL query to export")
	fl.StringSliceVar(&opts.Key, "key", nil, "key columns, unique and non-NULL together, comma-separated: the fetch order")
	fl.StringArrayVar(&opts.Out, "out", nil, "destination, repeatable: a local folder (created if missing), s3://bucket/prefix/ or sftp://user@host[:port]/path/")
	fl.StringArrayVar(&opts.Formats, "format", nil, "output format, repeatable: xlsx, csv, csv.gz (default xlsx)")
	fl.IntVar(&opts.ChunkRows, "chunk-rows", 50000, "rows fetched per chunk")
	fl.IntVar(&opts.MaxRowsPerSheet, "max-rows-per-sheet", maxSheetRows, "data rows per XLSX sheet (at most 1048575)")
	fl.Int64Var(&opts.MaxRowsPerFile, "max-rows-per-file", 0, "data rows per file, 0 for no limit")
	fl.StringVar(&opts.MaxFileBytes, "max-file-bytes", "", "largest size of one file, such as 25MB or 1GiB; empty for no limit")
	fl.StringVar(&opts.Name, "name", "export", "file name prefix: PREFIX-0001.xlsx, PREFIX-0002.xlsx, ...")
	fl.StringVar(&opts.TimeZone, "timezone", "UTC", "IANA time zone timestamps are rendered in")
	fl.StringVar(&opts.WorkDir, "work-dir", "", "folder for spill and staged files (default: inside the first local --out, else the system's temporary folder)")
	fl.StringSliceVar(&opts.GroupBy, "group-by", nil, "summary group columns, comma-separated (needs --agg)")
	fl.StringArrayVar(&opts.Aggs, "agg", nil, "summary aggregate, repeatable: count(*), count(c), sum(c), avg(c), min(c), max(c), count_distinct(c), approx_count_distinct(c), p95(c) (any pNN)")
	fl.StringVar(&opts.AggMemory, "agg-memory", "64MiB", "memory for summary state before it spills to disk")
	opts.destinationFlags.register(cmd)
	_ = cmd.MarkFlagFilename("query-file", "sql")
	_ = cmd.MarkFlagDirname("out")
	_ = cmd.MarkFlagDirname("work-dir")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"xlsx", "csv", "csv.gz"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// resolve checks the flags and fills in defaults from the environment.
func (o *exportOptions) resolve(a *app, cmd *cobra.Command) error {
	if o.DSN == "" {
		o.DSN = a.getenv("DATABASE_URL")
	}
	a.secrets = append(a.secrets, dsnSecrets(o.DSN)...)
	if pw := a.getenv("PGPASSWORD"); pw != "" {
		a.secrets = append(a.secrets, pw)
	}
	switch {
	case o.Query != "" && o.QueryFile != "":
		return usagef("give --query or --query-file, not both")
	case o.QueryFile != "":
		b, err := os.ReadFile(o.QueryFile)
		if err != nil {
			return usagef("--query-file: %w", err)
		}
		o.Query = string(b)
	}
	if strings.TrimSpace(o.Query) == "" {
		return usagef("a query is required: --query SQL or --query-file FILE")
	}
	if len(o.Key) == 0 {
		return usagef("--key is required: the columns that order and identify rows, such as --key id")
	}
	seen := map[string]bool{}
	for i, k := range o.Key {
		k = strings.TrimSpace(k)
		if k == "" {
			return usagef("--key has an empty column name")
		}
		if seen[k] {
			return usagef("--key names column %q twice", k)
		}
		seen[k] = true
		o.Key[i] = k
	}
	for i, g := range o.GroupBy {
		o.GroupBy[i] = strings.TrimSpace(g)
	}
	if len(o.Out) == 0 {
		return usagef("--out is required: the folder to write files to")
	}
	if err := o.checkDestinations(); err != nil {
		return err
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{pipeline.FormatXLSX}
	}
	for _, f := range o.Formats {
		switch f {
		case pipeline.FormatXLSX, pipeline.FormatCSV, pipeline.FormatCSVGz:
		default:
			return usagef("--format %q: use xlsx, csv or csv.gz", f)
		}
	}
	if o.ChunkRows < 1 {
		return usagef("--chunk-rows must be at least 1, not %d", o.ChunkRows)
	}
	if o.MaxRowsPerSheet < 1 || o.MaxRowsPerSheet > maxSheetRows {
		return usagef("--max-rows-per-sheet must be from 1 to %d (Excel's limit less the header), not %d", maxSheetRows, o.MaxRowsPerSheet)
	}
	if o.MaxRowsPerFile < 0 {
		return usagef("--max-rows-per-file must not be negative")
	}
	if o.MaxFileBytes != "" {
		n, err := parseSize(o.MaxFileBytes)
		if err != nil {
			return usagef("--max-file-bytes: %w", err)
		}
		o.maxFileBytes = n
	}
	if o.Name == "" || strings.ContainsAny(o.Name, `/\`) || o.Name == "." || o.Name == ".." {
		return usagef("--name %q must be a plain file name prefix", o.Name)
	}
	if len(o.GroupBy) > 0 && len(o.Aggs) == 0 {
		return usagef("--group-by needs at least one --agg, such as --agg 'count(*)'")
	}
	for _, e := range o.Aggs {
		sp, err := agg.Parse(e)
		if err != nil {
			return &usageError{err}
		}
		o.aggs = append(o.aggs, sp)
	}
	n, err := parseSize(o.AggMemory)
	if err != nil {
		return usagef("--agg-memory: %w", err)
	}
	o.aggMemory = n
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil || o.TimeZone == "Local" || o.TimeZone == "" {
		return usagef("--timezone %q is not a known IANA time zone", o.TimeZone)
	}
	o.location = loc
	return nil
}

// parseSize reads a byte size such as 1048576, 25MB, 25MiB or 1.5GB:
// KB, MB, GB, TB are powers of 1000, KiB, MiB, GiB, TiB (and K, M, G) of 1024.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 1 || v*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size such as 25MB or 1GiB", s)
	}
	return int64(v * mult), nil
}

// dsnSecrets returns the password in a DSN, to keep it out of messages.
func dsnSecrets(dsn string) []string {
	if dsn == "" {
		return nil
	}
	var out []string
	if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
		out = append(out, cfg.Password)
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	return out
}

// baseMemoryLimit is the Go heap's soft limit for an export without a
// summary. The live heap of an export stays near 30 MiB whatever the row
// count; without a limit the collector lets garbage grow to twice that, and
// peak RSS then wanders with GC timing (81 MiB at 1M rows, 100 MiB at 4M).
const baseMemoryLimit = 64 << 20

func runExport(ctx context.Context, a *app, o *exportOptions) (err error) {
	log := a.logger
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := int64(baseMemoryLimit)
		if len(o.aggs) > 0 {
			limit += o.aggMemory
		}
		debug.SetMemoryLimit(limit)
	}
	dests, err := o.destinations(ctx, a)
	if err != nil {
		return err
	}
	defer closeDestinations(dests)
	work, err := o.workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	conn, err := connect(ctx, o.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	prog := &pipeline.Progress{}
	stopProgress := startProgress(a, prog)
	started := time.Now()
	res, err := pipeline.Run(ctx, conn, pipeline.Config{
		Query: o.Query, Key: o.Key, ChunkRows: o.ChunkRows, Location: o.location, Formats: o.Formats,
		Prefix: o.Name, MaxRowsPerSheet: o.MaxRowsPerSheet, MaxRowsPerFile: o.MaxRowsPerFile, MaxFileBytes: o.maxFileBytes,
		WorkDir: work, Destinations: dests, Logger: log,
		GroupBy: o.GroupBy, Aggs: o.aggs, AggMemory: o.aggMemory, PresignTTL: o.Presign,
	}, prog)
	stopProgress()
	if res == nil {
		return err
	}
	m := res.Manifest
	elapsed := time.Since(started)
	for _, w := range m.Warnings {
		log.Warn(w)
	}
	log.Info("export finished", "rows", m.Rows, "files", len(m.Files), "seconds", fmt.Sprintf("%.2f", elapsed.Seconds()),
		"rows_per_second", int64(float64(m.Rows)/max(elapsed.Seconds(), 1e-9)), "fetch_mode", m.Fetch.Mode)
	report(a, res)
	return err
}

// report prints the files, then what each destination got, on stdout.
func report(a *app, res *pipeline.Result) {
	for _, f := range res.Manifest.Files {
		fmt.Fprintf(a.stdout, "%s	%s	%s	%d rows	%d bytes\n", f.Name, f.Kind, f.Format, f.Rows, f.Bytes)
	}
	for _, d := range res.Deliveries {
		if d.Err != nil {
			fmt.Fprintf(a.stdout, "failed\t%s\t%s\n", d.Destination, a.redact(d.Err.Error()))
			continue
		}
		fmt.Fprintf(a.stdout, "delivered\t%s\t%d files sent, %d skipped (already there)\n", d.Destination, len(d.Delivered), len(d.Skipped))
		for _, f := range res.Manifest.Files {
			if u, ok := d.URLs[f.Name]; ok {
				fmt.Fprintf(a.stdout, "url\t%s\t%s\n", f.Name, u)
			}
		}
	}
}

// connect opens the connection, classifying failures as database errors.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, usagef("--dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "exporter"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "28P01" {
			return nil, &dbError{fmt.Errorf("database: password authentication failed for user %q", cfg.User)}
		}
		return nil, &dbError{fmt.Errorf("database: %w", err)}
	}
	return conn, nil
}
