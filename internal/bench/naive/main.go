// Command naive is the baseline of the export benchmark (internal/bench):
// what a typical application does to export a query to XLSX. It runs the
// query with pgx, takes each row as pgx decodes it (rows.Values), turns
// pgtype.Numeric into float64, passes everything else (time.Time, strings,
// integers, NULL as nil) as is to an excelize StreamWriter, starts a new
// sheet every 1,048,575 data rows (Excel's limit less the header) and saves
// the workbook with SaveAs. It prints "rows N" on stdout when done.
//
//	naive -dsn DSN -query 'SELECT * FROM t ORDER BY id' -out out.xlsx
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/xuri/excelize/v2"
)

// maxSheetRows is Excel's row limit less the header row.
const maxSheetRows = 1048575

func main() {
	dsn := flag.String("dsn", "", "PostgreSQL connection string")
	query := flag.String("query", "", "SQL query to export")
	out := flag.String("out", "", "XLSX file to write")
	flag.Parse()
	if *dsn == "" || *query == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: naive -dsn DSN -query SQL -out FILE.xlsx")
		os.Exit(2)
	}
	n, err := run(context.Background(), *dsn, *query, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "naive:", err)
		os.Exit(1)
	}
	fmt.Printf("rows %d\n", n)
}

func run(ctx context.Context, dsn, query, out string) (n int64, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	rows, err := conn.Query(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	var header []any
	for _, fd := range rows.FieldDescriptions() {
		header = append(header, fd.Name)
	}

	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close workbook: %w", cerr)
		}
	}()
	sheets := 1
	sw, err := newSheet(f, "Sheet1", header)
	if err != nil {
		return 0, err
	}
	row := 1 // last row written in the current sheet
	for rows.Next() {
		if row == maxSheetRows+1 {
			if err := sw.Flush(); err != nil {
				return n, fmt.Errorf("flush sheet %d: %w", sheets, err)
			}
			sheets++
			name := fmt.Sprintf("Sheet%d", sheets)
			if _, err := f.NewSheet(name); err != nil {
				return n, fmt.Errorf("new sheet %s: %w", name, err)
			}
			if sw, err = newSheet(f, name, header); err != nil {
				return n, err
			}
			row = 1
		}
		vals, err := rows.Values()
		if err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		for i, v := range vals {
			if num, ok := v.(pgtype.Numeric); ok {
				fv, err := num.Float64Value()
				if err != nil {
					return n, fmt.Errorf("row %d column %d: %w", n+1, i+1, err)
				}
				if fv.Valid {
					vals[i] = fv.Float64
				} else {
					vals[i] = nil
				}
			}
		}
		row++
		cell, err := excelize.CoordinatesToCellName(1, row)
		if err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		if err := sw.SetRow(cell, vals); err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read rows: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return n, fmt.Errorf("flush sheet %d: %w", sheets, err)
	}
	if err := f.SaveAs(out); err != nil {
		return n, fmt.Errorf("save %s: %w", out, err)
	}
	return n, nil
}

func newSheet(f *excelize.File, name string, header []any) (*excelize.StreamWriter, error) {
	sw, err := f.NewStreamWriter(name)
	if err != nil {
		return nil, fmt.Errorf("stream writer for %s: %w", name, err)
	}
	if err := sw.SetRow("A1", header); err != nil {
		return nil, fmt.Errorf("header of %s: %w", name, err)
	}
	return sw, nil
}
