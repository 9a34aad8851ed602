package main

import (
	"fmt"
	"os"
	"time"

	"github.com/exporter-dev/exporter/internal/pipeline"
	"golang.org/x/term"
)

// startProgress draws a progress line on stderr while the export runs:
// phase, rows, rows/s and elapsed time. It draws only on a terminal unless
// --progress always. The returned func clears the line.
func startProgress(a *app, p *pipeline.Progress) func() {
	on := a.progress == "always"
	if a.progress == "auto" {
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			on = true
		}
	}
	if !on {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(a.stderr, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(a.stderr, "\r\033[K"+progressLine(p, time.Since(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func progressLine(p *pipeline.Progress, elapsed time.Duration) string {
	phase, _ := p.Phase.Load().(string)
	rows := p.Fetched.Load()
	if phase != "fetch" && phase != "prepare" {
		rows = p.Written.Load()
	}
	rate := float64(rows) / max(elapsed.Seconds(), 0.001)
	return fmt.Sprintf("%-8s %12s rows %10s rows/s %s", phase, group(rows), group(int64(rate)), elapsed.Truncate(time.Second))
}

// group writes n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
