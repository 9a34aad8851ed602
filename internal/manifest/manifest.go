// Package manifest describes a delivered export: its rows, its files and
// their checksums, so a client can check what it received.
package manifest

import (
	"encoding/json"
	"time"
)

// Name is the manifest's file name in every destination.
const Name = "manifest.json"

// Version is the version of the manifest format.
const Version = 1

// Manifest is the content of manifest.json. Field names are a contract.
type Manifest struct {
	Version     int       `json:"version"`
	Rows        int64     `json:"rows"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
	QuerySHA256 string    `json:"query_sha256"`
	Key         []string  `json:"key"`
	TimeZone    string    `json:"time_zone"`
	Columns     []Column  `json:"columns"`
	Fetch       Fetch     `json:"fetch"`
	Files       []File    `json:"files"`
	// Totals are the grand totals of a summary (--agg), for reconciling
	// the delivered files.
	Totals *Totals `json:"totals,omitempty"`
	// TruncatedCells counts XLSX text cells cut to Excel's 32,767 characters.
	TruncatedCells int64    `json:"truncated_cells"`
	Warnings       []string `json:"warnings"`
}

// Totals are the grand totals over every exported row.
type Totals struct {
	Rows int64 `json:"rows"`
	// Sums has the exact total of each column some sum() aggregates, as a
	// decimal string with every digit; null when it had no non-NULL value.
	Sums map[string]*string `json:"sums"`
}

// Column is one column of the export.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Fetch says how the rows were read.
type Fetch struct {
	Mode   string `json:"mode"` // keyset or stream
	Chunks int    `json:"chunks"`
}

// File is one delivered file; Name is relative to the destination.
type File struct {
	Name   string  `json:"name"`
	Format string  `json:"format"` // xlsx, csv, csv.gz
	Kind   string  `json:"kind"`   // data or summary
	Rows   int64   `json:"rows"`
	Bytes  int64   `json:"bytes"`
	SHA256 string  `json:"sha256"`
	Sheets []Sheet `json:"sheets,omitempty"`
	// URL is a presigned download URL (--presign), in the manifest of a
	// destination that can make one.
	URL string `json:"url,omitempty"`
}

// Sheet is one worksheet of an XLSX file.
type Sheet struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// Marshal renders the manifest as indented JSON with a final newline. Nil
// lists are written as [] so readers need not check for null.
func (m *Manifest) Marshal() ([]byte, error) {
	c := *m
	if c.Key == nil {
		c.Key = []string{}
	}
	if c.Files == nil {
		c.Files = []File{}
	}
	if c.Warnings == nil {
		c.Warnings = []string{}
	}
	if c.Columns == nil {
		c.Columns = []Column{}
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
