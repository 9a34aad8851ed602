package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exporter-dev/exporter/internal/pipeline"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1048576, true},
		{"25MB", 25_000_000, true},
		{"25mb", 25_000_000, true},
		{"25MiB", 25 << 20, true},
		{"1.5GB", 1_500_000_000, true},
		{"2G", 2 << 30, true},
		{"10 KB", 10_000, true},
		{"100B", 100, true},
		{"0", 0, false},
		{"-5MB", 0, false},
		{"lots", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestGroup(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := group(in); got != want {
			t.Errorf("group(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestExportFlags checks flag parsing and defaults without running an export.
func TestExportFlags(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://u:hunter2@db/x"}
	var got *exportOptions
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string { return env[k] }}
	cmd := newRootCmd(a)
	cmd.RemoveCommand(cmd.Commands()...)
	cmd.AddCommand(newExportCmd(a, func(_ context.Context, o *exportOptions) error { got = o; return nil }))
	cmd.SetArgs([]string{"export", "--query", "SELECT 1;", "--key", "a,b", "--key", "c", "--out", "o",
		"--format", "csv", "--format", "csv.gz", "--max-file-bytes", "10MiB", "--timezone", "Asia/Tokyo"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.DSN != env["DATABASE_URL"] || !slices.Equal(got.Key, []string{"a", "b", "c"}) || got.ChunkRows != 50000 ||
		got.MaxRowsPerSheet != 1048575 || got.maxFileBytes != 10<<20 || got.location.String() != "Asia/Tokyo" ||
		!slices.Equal(got.Formats, []string{"csv", "csv.gz"}) || got.Name != "export" {
		t.Fatalf("options %+v", got)
	}
	if !slices.Contains(a.secrets, "hunter2") {
		t.Fatalf("the DSN's password is not among the secrets to redact: %v", a.secrets)
	}
	if a.redact("failed for postgres://u:hunter2@db/x") != "failed for postgres://u:xxxxx@db/x" {
		t.Fatal("redact left the password")
	}
}

func TestProgressLine(t *testing.T) {
	p := &pipeline.Progress{}
	p.Phase.Store("fetch")
	p.Fetched.Store(1234567)
	p.Written.Store(1000)
	if got, want := progressLine(p, 2*time.Second+300*time.Millisecond), "fetch       1,234,567 rows    536,768 rows/s 2s"; got != want {
		t.Fatalf("progress line %q, want %q", got, want)
	}
	p.Phase.Store("write")
	if got := progressLine(p, time.Second); !strings.Contains(got, "write") || !strings.Contains(got, " 1,000 rows") {
		t.Fatalf("write phase shows %q, want the rows written", got)
	}
	// Not a terminal: --progress auto draws nothing.
	var stderr bytes.Buffer
	stop := startProgress(&app{stderr: &stderr, progress: "auto"}, p)
	time.Sleep(300 * time.Millisecond)
	stop()
	if stderr.Len() != 0 {
		t.Fatalf("progress drawn on a non-terminal: %q", stderr.String())
	}
}

func TestLogsAreRedacted(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var stderr bytes.Buffer
		a := &app{stderr: &stderr, logFormat: format, progress: "never"}
		if err := a.setup(); err != nil {
			t.Fatal(err)
		}
		a.secrets = []string{"s3cr3t-pw"}
		a.logger.Warn("connect to postgres://u:s3cr3t-pw@db/x failed", "error", "auth s3cr3t-pw", "n", 3)
		if strings.Contains(stderr.String(), "s3cr3t-pw") || !strings.Contains(stderr.String(), "xxxxx") {
			t.Fatalf("%s log not redacted: %s", format, stderr.String())
		}
	}
}

func TestProgressLineClearedBeforeLogs(t *testing.T) {
	var stderr bytes.Buffer
	pw := &progressWriter{w: &stderr}
	pw.draw("fetch 10 rows")
	_, _ = pw.Write([]byte("level=INFO msg=hello\n"))
	pw.draw("fetch 20 rows")
	pw.clear()
	if got, want := stderr.String(), "\r\033[Kfetch 10 rows\r\033[Klevel=INFO msg=hello\n\r\033[Kfetch 20 rows\r\033[K"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
}
