// Command pgtmp manages a throwaway PostgreSQL cluster for the Makefile:
//
//	pgtmp start DIR          start a cluster in DIR, create database "exporter",
//	                         print its unix-socket DSN on stdout
//	pgtmp stop DIR           stop the cluster in DIR (no-op if not running)
//	pgtmp load DIR FILE.sql  run a SQL script against database "exporter"
//	pgtmp dsn DIR            print the DSN again
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/exporter-dev/exporter/internal/pgtest"
)

const db = "exporter"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pgtmp:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || (args[0] == "load") != (len(args) == 3) || len(args) > 3 {
		return fmt.Errorf("usage: pgtmp start|stop|dsn DIR | pgtmp load DIR FILE.sql")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd, dir := args[0], args[1]
	if cmd == "start" {
		s, err := pgtest.Start(ctx, dir)
		if err != nil {
			return err
		}
		if err := s.CreateDatabase(ctx, db); err != nil {
			_ = s.Stop()
			return err
		}
		fmt.Println(s.DSN(db))
		return nil
	}
	s, err := pgtest.Open(dir)
	if err != nil {
		return err
	}
	switch cmd {
	case "stop":
		return s.Stop()
	case "dsn":
		fmt.Println(s.DSN(db))
		return nil
	case "load":
		sql, err := os.ReadFile(args[2])
		if err != nil {
			return err
		}
		return s.Exec(ctx, db, string(sql))
	}
	return fmt.Errorf("unknown command %q", cmd)
}
