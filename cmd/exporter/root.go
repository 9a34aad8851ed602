package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/exporter-dev/exporter/internal/agg"
	"github.com/exporter-dev/exporter/internal/chunk"
	"github.com/exporter-dev/exporter/internal/pipeline"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
)

// Exit codes, listed in the help and the README.
const (
	exitOK       = 0
	exitError    = 1 // unexpected failure
	exitUsage    = 2 // bad flags or arguments, unknown key column
	exitDatabase = 3 // database unreachable, authentication failed
	exitQuery    = 4 // PostgreSQL rejected the query
	exitData     = 5 // NULL or duplicate key values
	exitOutput   = 6 // output folder not writable, delivery failed
	exitCanceled = 130
)

const exitCodesHelp = `Exit codes:
  0    success
  1    unexpected failure
  2    usage error: bad flag or argument, unknown key or aggregate column,
       time zone PostgreSQL does not know
  3    database unreachable or authentication failed
  4    PostgreSQL rejected the query (message and position shown)
  5    key columns hold NULL or duplicate values
  6    output not writable, or delivery failed to at least one destination
  130  interrupted (SIGINT or SIGTERM)
`

// app is what commands share: the streams, the environment and the logger.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	logFormat      string
	progress       string
	logger         *slog.Logger
	secrets        []string // redacted from every message
	cpuProfile     string
	stopProfile    func()
	// logw is stderr for logs: it clears the progress line before a record.
	logw *progressWriter
}

// usageError is a mistake in how the command was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// dbError is a failure to reach or log in to the database.
type dbError struct{ err error }

func (e *dbError) Error() string { return e.err.Error() }
func (e *dbError) Unwrap() error { return e.err }

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "exporter",
		Short: "Export a PostgreSQL report query to split XLSX and CSV files, with a manifest",
		Long: `exporter turns a report query on PostgreSQL into files a client can open:
XLSX workbooks split into sheets and files, CSV and gzipped CSV, with a
manifest.json of rows and checksums. Rows are fetched in keyset-paginated
chunks inside one consistent snapshot and spilled to disk, so memory does
not grow with the number of rows.

` + exitCodesHelp,
		Example: `  # Export a table to one XLSX workbook in ./out
  exporter export --dsn postgres://report@db/shop --query 'SELECT * FROM orders' --key id --out ./out

  # Generate shell completion
  exporter completion bash > /etc/bash_completion.d/exporter`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.setup()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.PersistentFlags().StringVar(&a.progress, "progress", "auto", "progress line on stderr: auto (only on a terminal), always or never")
	root.PersistentFlags().StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("progress", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newExportCmd(a, nil))
	return root
}

// version is the module version this binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (a *app) setup() error {
	// Every string in a log record passes through redact: a password
	// from a DSN or the environment never reaches the log.
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		if at.Value.Kind() == slog.KindString {
			if s := at.Value.String(); s != "" {
				at.Value = slog.StringValue(a.redact(s))
			}
		}
		return at
	}}
	a.logw = &progressWriter{w: a.stderr}
	switch a.logFormat {
	case "text":
		a.logger = slog.New(slog.NewTextHandler(a.logw, opts))
	case "json":
		a.logger = slog.New(slog.NewJSONHandler(a.logw, opts))
	default:
		return usagef("--log-format must be text or json, not %q", a.logFormat)
	}
	switch a.progress {
	case "auto", "always", "never":
	default:
		return usagef("--progress must be auto, always or never, not %q", a.progress)
	}
	if a.cpuProfile != "" {
		f, err := os.Create(a.cpuProfile)
		if err != nil {
			return usagef("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return usagef("--cpuprofile: %w", err)
		}
		a.stopProfile = func() { pprof.StopCPUProfile(); _ = f.Close() }
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if a.stopProfile != nil {
		a.stopProfile()
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	msg := a.redact(strings.ReplaceAll(err.Error(), "\n", " "))
	if a.logFormat == "json" && a.logger != nil {
		a.logger.Error(msg, "exit_code", code)
	} else {
		fmt.Fprintf(stderr, "exporter: %s\n", msg)
	}
	return code
}

// exitCode maps an error to the documented exit codes.
func exitCode(ctx context.Context, err error) int {
	var (
		ue  *usageError
		ae  *agg.ConfigError
		te  *chunk.TimeZoneError
		ke  *chunk.KeyError
		qe  *chunk.QueryError
		de  *dbError
		oe  *pipeline.OutputError
		pge *pgconn.PgError
	)
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.As(err, &ue), errors.As(err, &ae), errors.As(err, &te):
		return exitUsage
	case errors.As(err, &ke):
		if ke.Reason == "unknown" {
			return exitUsage
		}
		return exitData
	case errors.As(err, &de):
		return exitDatabase
	case errors.As(err, &qe):
		return exitQuery
	case errors.As(err, &oe):
		return exitOutput
	case errors.As(err, &pge):
		return exitQuery
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return exitUsage
	}
	return exitError
}

// redact removes every known secret from s.
func (a *app) redact(s string) string {
	for _, sec := range a.secrets {
		if len(sec) >= 1 {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}
