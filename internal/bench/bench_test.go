package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRows(t *testing.T) {
	got, err := parseRows(" 4M, 1_000_000,20k,1000000 ")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{20000, 1000000, 4000000}; !slices.Equal(got, want) {
		t.Errorf("parseRows = %v, want %v", got, want)
	}
	for _, bad := range []string{"", ",", "0", "-5", "1x", "k"} {
		if _, err := parseRows(bad); err == nil {
			t.Errorf("parseRows(%q) succeeded", bad)
		}
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4000000: "-4,000,000"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheckCount(t *testing.T) {
	if err := checkCount("COPY 20000\n", "COPY", 20000); err != nil {
		t.Error(err)
	}
	if err := checkCount("rows 19999\n", "rows", 20000); err == nil {
		t.Error("wrong count accepted")
	}
	if err := checkCount("", "rows", 1); err == nil {
		t.Error("missing count accepted")
	}
}

func TestMarkdown(t *testing.T) {
	res := []result{
		{Case: caseExporterXLSX, Rows: 1000, Elapsed: time.Second, MaxRSS: 40 << 10, Bytes: 1 << 20},
		{Case: caseNaiveXLSX, Rows: 1000, Elapsed: 2 * time.Second, MaxRSS: 80 << 10, Bytes: 1 << 20},
		{Case: caseExporterXLSX, Rows: 4000, Elapsed: 4 * time.Second, MaxRSS: 42 << 10, Bytes: 4 << 20},
		{Case: caseNaiveXLSX, Rows: 4000, Err: errors.New("boom")},
	}
	md := markdown(envInfo{postgres: "15.8", cpu: "Test CPU", cpus: 2, goVersion: "go1.26", exporterArgs: "default"}, res)
	for _, want := range []string{
		"| exporter → XLSX | 1,000 | 1.00 | 1,000 | 40.0 | 1.0 |",
		"| naive pgx + excelize → XLSX | 4,000 | failed | – | – | – |",
		"| 1,000 | 1,000 | 500 | 2.00× |",
		"| 4,000 | 1,000 | failed | – |",
		"| exporter → XLSX | 40.0 MiB | 42.0 MiB | 1.05× |",
		"| naive pgx + excelize → XLSX | 80.0 MiB | failed | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
