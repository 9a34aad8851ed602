package main

import (
	"fmt"
	"io"
	"os"
	"sync"
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
	pw := a.logw
	if pw == nil {
		pw = &progressWriter{w: a.stderr}
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
				pw.clear()
				return
			case <-t.C:
				pw.draw(progressLine(p, time.Since(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// progressWriter is stderr shared by the progress line and the logs: a log
// record first clears the line, which the next tick draws again.
type progressWriter struct {
	mu     sync.Mutex
	w      io.Writer
	active bool // a progress line is on screen
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active {
		_, _ = io.WriteString(p.w, "\r\033[K")
		p.active = false
	}
	return p.w.Write(b)
}

func (p *progressWriter) draw(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, "\r\033[K"+line)
	p.active = true
}

func (p *progressWriter) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active {
		_, _ = io.WriteString(p.w, "\r\033[K")
		p.active = false
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
