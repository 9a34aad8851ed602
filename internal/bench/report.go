package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) }

// labels are the markdown names of the cases.
var labels = map[string]string{
	caseExporterXLSX: "exporter → XLSX",
	caseExporterCSV:  "exporter → CSV",
	caseExporterAgg:  "exporter → CSV + summary, 500k groups, 7 aggregates",
	caseNaiveXLSX:    "naive pgx + excelize → XLSX",
	casePSQLCSV:      "psql `\\copy` → CSV",
}

func label(c string) string {
	if l, ok := labels[c]; ok {
		return l
	}
	return c
}

func (r result) rowsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Elapsed.Seconds()
}

const lineFormat = "%-14s %10s %9s %11s %13s %15s"

func runHeader() string {
	return fmt.Sprintf(lineFormat, "case", "rows", "seconds", "rows/s", "peak RSS MiB", "output bytes")
}

// line is the plain-text report of one run.
func (r result) line() string {
	if r.Err != nil {
		msg, _, _ := strings.Cut(r.Err.Error(), "\n")
		return fmt.Sprintf("%-14s %10d FAILED: %s", r.Case, r.Rows, msg)
	}
	return fmt.Sprintf(lineFormat, r.Case, strconv.FormatInt(r.Rows, 10),
		strconv.FormatFloat(r.Elapsed.Seconds(), 'f', 2, 64),
		strconv.FormatFloat(math.Round(r.rowsPerSec()), 'f', 0, 64),
		mib(r.MaxRSS<<10), strconv.FormatInt(r.Bytes, 10))
}

// group formats n with thousands separators: 1234567 -> 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// markdown renders the results as README-ready markdown.
func markdown(env envInfo, results []result) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	var cases []string
	var counts []int64
	find := func(c string, n int64) *result {
		for i := range results {
			if results[i].Case == c && results[i].Rows == n && results[i].Err == nil {
				return &results[i]
			}
		}
		return nil
	}
	for _, r := range results {
		if !slices.Contains(cases, r.Case) {
			cases = append(cases, r.Case)
		}
		if !slices.Contains(counts, r.Rows) {
			counts = append(counts, r.Rows)
		}
	}

	p("### Export benchmark\n\n")
	p("A table of N rows × 10 columns (bigint key, timestamptz, int ×2, bigint, ")
	p("numeric(12,2), numeric, three texts of 10–30 characters, one of them 30%% NULL), ")
	p("PostgreSQL %s on the same machine over a unix socket; ", env.postgres)
	cpu := env.cpu
	if cpu == "" {
		cpu = "CPU"
	}
	p("%d × %s, %s/%s, %s; exporter flags: %s. ", env.cpus, cpu, runtime.GOOS, runtime.GOARCH, env.goVersion, env.exporterArgs)
	p("One run per case, each a separate process; peak RSS is that process's ")
	p("maximum resident set size (the PostgreSQL server is not counted); ")
	p("output size excludes manifest.json. Produced by `make bench`.\n\n")

	p("| Case | Rows | Seconds | Rows/s | Peak RSS (MiB) | Output (MiB) |\n")
	p("|:-----|-----:|--------:|-------:|---------------:|-------------:|\n")
	for _, r := range results {
		if r.Err != nil {
			p("| %s | %s | failed | – | – | – |\n", label(r.Case), group(r.Rows))
			continue
		}
		p("| %s | %s | %.2f | %s | %s | %s |\n", label(r.Case), group(r.Rows),
			r.Elapsed.Seconds(), group(int64(math.Round(r.rowsPerSec()))),
			mib(r.MaxRSS<<10), mib(r.Bytes))
	}

	if slices.Contains(cases, caseExporterXLSX) && slices.Contains(cases, caseNaiveXLSX) {
		p("\nExporter XLSX throughput relative to the naive pgx + excelize program:\n\n")
		p("| Rows | exporter XLSX rows/s | naive rows/s | Ratio |\n")
		p("|-----:|---------------------:|-------------:|------:|\n")
		for _, n := range counts {
			e, nv := find(caseExporterXLSX, n), find(caseNaiveXLSX, n)
			if e == nil || nv == nil || nv.rowsPerSec() == 0 {
				p("| %s | %s | %s | – |\n", group(n), rate(e), rate(nv))
				continue
			}
			p("| %s | %s | %s | %.2f× |\n", group(n), rate(e), rate(nv), e.rowsPerSec()/nv.rowsPerSec())
		}
	}

	if len(counts) > 1 {
		lo, hi := counts[0], counts[0]
		for _, n := range counts {
			lo, hi = min(lo, n), max(hi, n)
		}
		p("\nPeak RSS from %s to %s rows (%.1f× the rows):\n\n", group(lo), group(hi), float64(hi)/float64(lo))
		p("| Case | %s rows | %s rows | Growth |\n", group(lo), group(hi))
		p("|:-----|------:|------:|-------:|\n")
		for _, c := range cases {
			a, z := find(c, lo), find(c, hi)
			growth := "–"
			if a != nil && z != nil && a.MaxRSS > 0 {
				growth = fmt.Sprintf("%.2f×", float64(z.MaxRSS)/float64(a.MaxRSS))
			}
			p("| %s | %s | %s | %s |\n", label(c), rss(a), rss(z), growth)
		}
	}
	return b.String()
}

func rate(r *result) string {
	if r == nil {
		return "failed"
	}
	return group(int64(math.Round(r.rowsPerSec())))
}

func rss(r *result) string {
	if r == nil {
		return "failed"
	}
	return mib(r.MaxRSS<<10) + " MiB"
}
