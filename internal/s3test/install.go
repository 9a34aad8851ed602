package s3test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DisallowSkipEnv, set to 1, turns "versitygw cannot be had" from a skip
// into a failure (for CI, where every test must run).
const DisallowSkipEnv = "EXPORTER_TEST_DISALLOW_SKIP"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of versitygw, installing the pinned version when
// it is missing. When it cannot be had the test is skipped, or failed
// under EXPORTER_TEST_DISALLOW_SKIP=1.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findOrInstall() })
	if binErr != nil {
		Unavailable(t, "versitygw: %v", binErr)
	}
	return binPath
}

// Unavailable skips the test, or fails it when skips are disallowed.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(DisallowSkipEnv) == "1" {
		t.Fatalf("s3test: "+format+" (%s=1: not skipping)", append(args, DisallowSkipEnv)...)
	}
	t.Skipf("s3test: "+format, args...)
}

func findOrInstall() (string, error) {
	if p, ok := find(); ok {
		return p, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("not found on PATH or in GOPATH/bin, and no go command to install it")
	}
	binDir, err := installDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	// One builder at a time across test binaries: the others wait on
	// the lock and then find the binary.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "exporter-versitygw-install.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if p, ok := find(); ok {
		return p, nil
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "s3test: installing %s@%s (about a minute)...\n", Module, Version)
	cmd := exec.Command(goBin, "install", Module+"@"+Version)
	cmd.Dir = os.TempDir() // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOFLAGS=-buildvcs=false", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", Module, Version, err, out)
	}
	fmt.Fprintf(os.Stderr, "s3test: installed versitygw in %s\n", time.Since(start).Round(time.Second))
	p := filepath.Join(binDir, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// find looks on PATH, then in $GOBIN and each $GOPATH/bin.
func find() (string, bool) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, true
	}
	var dirs []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, gp := range filepath.SplitList(goEnv("GOPATH")) {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// installDir is where go install puts binaries: $GOBIN, else the first
// $GOPATH/bin.
func installDir() (string, error) {
	if gobin := goEnv("GOBIN"); gobin != "" {
		return gobin, nil
	}
	gp := filepath.SplitList(goEnv("GOPATH"))
	if len(gp) == 0 || gp[0] == "" {
		return "", errors.New("no GOPATH to install into")
	}
	return filepath.Join(gp[0], "bin"), nil
}

var goEnvCache sync.Map

func goEnv(name string) string {
	if v, ok := goEnvCache.Load(name); ok {
		return v.(string)
	}
	v := os.Getenv(name)
	if v == "" {
		if out, err := exec.Command("go", "env", name).Output(); err == nil {
			v = strings.TrimSpace(string(out))
		}
	}
	goEnvCache.Store(name, v)
	return v
}
