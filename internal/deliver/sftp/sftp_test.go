package sftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/exporter-dev/exporter/internal/deliver"
	"github.com/exporter-dev/exporter/internal/sshtest"
)

const MiB = 1 << 20

// config logs in to s with its user key and known_hosts, delivering into a
// folder that does not exist yet.
func config(t *testing.T, s *sshtest.Server) Config {
	return Config{
		User:           s.User,
		Host:           s.Host,
		Port:           s.Port,
		Path:           filepath.Join(t.TempDir(), "out", "sub"),
		KeyFile:        s.KeyFile,
		KnownHostsFile: s.KnownHostsFile,
		ConnectTimeout: 10 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(&testWriter{t}, nil)),
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// localFile writes size random bytes and describes them.
func localFile(t testing.TB, size int64) deliver.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src.bin")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return deliver.File{Path: p, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), ContentType: "application/octet-stream"}
}

func sumFile(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// noParts fails if dir holds a temporary upload.
func noParts(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".part-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in         string
		user, host string
		port       int
		path       string
		bad        string // substring of the error
	}{
		{in: "sftp://bob@example.com/upload/", user: "bob", host: "example.com", port: 22, path: "/upload/"},
		{in: "sftp://bob@example.com:2222/a/b", user: "bob", host: "example.com", port: 2222, path: "/a/b"},
		{in: "sftp://bob@[::1]:2222/x/", user: "bob", host: "::1", port: 2222, path: "/x/"},
		{in: "sftp://bob@example.com/~/reports/", user: "bob", host: "example.com", port: 22, path: "reports/"},
		{in: "sftp://bob@example.com", user: "bob", host: "example.com", port: 22, path: "."},
		{in: "sftp://example.com/x", bad: "no user"},
		{in: "s3://bob@example.com/x", bad: "scheme"},
		{in: "sftp://bob:hunter2@example.com/x", bad: "EXPORTER_SFTP_PASSWORD"},
		{in: "sftp://bob@example.com:99999/x", bad: "port"},
		{in: "sftp://bob@/x", bad: "no host"},
	} {
		user, host, port, p, err := ParseURL(tc.in)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("ParseURL(%q) err = %v, want %q", tc.in, err, tc.bad)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("ParseURL(%q) leaks the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || user != tc.user || host != tc.host || port != tc.port || p != tc.path {
			t.Errorf("ParseURL(%q) = %q %q %d %q %v", tc.in, user, host, port, p, err)
		}
	}
}

func TestPut(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"empty.bin", 0},
		{"small.csv", 1000},
		{"nested/dir/one-packet.bin", 32 * 1024},
		{"large.bin", 50 * MiB},
	} {
		src := localFile(t, tc.size)
		start := time.Now()
		if err := c.Put(ctx, tc.name, src); err != nil {
			t.Fatalf("Put %s: %v", tc.name, err)
		}
		t.Logf("%s: %d bytes in %v", tc.name, tc.size, time.Since(start))
		got := filepath.Join(cfg.Path, tc.name)
		fi, err := os.Stat(got)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != tc.size {
			t.Errorf("%s: %d bytes, want %d", tc.name, fi.Size(), tc.size)
		}
		if sum := sumFile(t, got); sum != src.SHA256 {
			t.Errorf("%s: SHA-256 %s, want %s", tc.name, sum, src.SHA256)
		}
	}
	noParts(t, cfg.Path)

	for _, bad := range []string{"", "/abs", "../up", "a/../../b", "."} {
		if err := c.Put(ctx, bad, localFile(t, 1)); err == nil || !deliver.IsPermanent(err) {
			t.Errorf("Put(%q) = %v, want a permanent error", bad, err)
		}
	}
}

func TestOverwrite(t *testing.T) {
	s := sshtest.Start(t)
	ctx := context.Background()
	for _, posix := range []bool{true, false} {
		cfg := config(t, s)
		c := newClient(t, cfg)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if !c.conn.posixRename {
			t.Fatal("OpenSSH should offer posix-rename@openssh.com")
		}
		c.conn.posixRename = posix
		for i := range 3 {
			src := localFile(t, int64(1000+i*100000))
			if err := c.Put(ctx, "report.xlsx", src); err != nil {
				t.Fatalf("posix=%v Put #%d: %v", posix, i, err)
			}
			if sum := sumFile(t, filepath.Join(cfg.Path, "report.xlsx")); sum != src.SHA256 {
				t.Fatalf("posix=%v #%d: remote file is not the last one put", posix, i)
			}
		}
		noParts(t, cfg.Path)
	}
}

func TestHasRemove(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	ctx := context.Background()
	src := localFile(t, 300000)

	if ok, err := c.Has(ctx, "f.bin", src); ok || err != nil {
		t.Fatalf("Has before Put = %v, %v", ok, err)
	}
	if err := c.Put(ctx, "f.bin", src); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Has(ctx, "f.bin", src); !ok || err != nil {
		t.Fatalf("Has after Put = %v, %v", ok, err)
	}
	other := src
	other.SHA256 = strings.Repeat("0", 64)
	if ok, err := c.Has(ctx, "f.bin", other); ok || err != nil {
		t.Fatalf("Has with another SHA-256 = %v, %v", ok, err)
	}
	other = src
	other.Size++
	if ok, err := c.Has(ctx, "f.bin", other); ok || err != nil {
		t.Fatalf("Has with another size = %v, %v", ok, err)
	}
	if err := c.Remove(ctx, "f.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Path, "f.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file still there after Remove: %v", err)
	}
	if ok, err := c.Has(ctx, "f.bin", src); ok || err != nil {
		t.Fatalf("Has after Remove = %v, %v", ok, err)
	}
	if err := c.Remove(ctx, "f.bin"); err != nil {
		t.Fatalf("Remove of a missing file: %v", err)
	}
}

func TestUnknownHostKey(t *testing.T) {
	s := sshtest.Start(t)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kh := range []string{empty, filepath.Join(t.TempDir(), "missing_known_hosts")} {
		cfg := config(t, s)
		cfg.KnownHostsFile = kh
		c := newClient(t, cfg)
		err := c.Put(context.Background(), "x.bin", localFile(t, 10))
		if err == nil {
			t.Fatal("unknown host key accepted")
		}
		t.Logf("%v", err)
		if !deliver.IsPermanent(err) {
			t.Errorf("unknown host key: not a permanent error: %v", err)
		}
		msg := err.Error()
		for _, want := range []string{ssh.FingerprintSHA256(s.HostKey), "[127.0.0.1]:", "ssh-keyscan", kh} {
			if !strings.Contains(msg, want) {
				t.Errorf("error does not name %q: %s", want, msg)
			}
		}
	}
}

func TestChangedHostKey(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	ctx := context.Background()
	if err := c.Put(ctx, "before.bin", localFile(t, 10)); err != nil {
		t.Fatal(err)
	}
	old := s.HostKey
	s.SwapHostKey() // also drops the connection
	err := c.Put(ctx, "after.bin", localFile(t, 10))
	if err == nil {
		t.Fatal("changed host key accepted")
	}
	t.Logf("%v", err)
	if !deliver.IsPermanent(err) {
		t.Errorf("changed host key: not a permanent error: %v", err)
	}
	for _, want := range []string{"CHANGED", ssh.FingerprintSHA256(s.HostKey), ssh.FingerprintSHA256(old), "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Path, "after.bin")); err == nil {
		t.Error("file delivered to a server with a changed key")
	}
}

func TestInsecureAcceptHostKey(t *testing.T) {
	s := sshtest.Start(t)
	s.SwapHostKey() // known_hosts now names a different key
	var logs bytes.Buffer
	cfg := config(t, s)
	cfg.InsecureAcceptHostKey = true
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := newClient(t, cfg)
	src := localFile(t, 1000)
	if err := c.Put(context.Background(), "x.bin", src); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if sumFile(t, filepath.Join(cfg.Path, "x.bin")) != src.SHA256 {
		t.Fatal("content differs")
	}
	if !strings.Contains(logs.String(), "INSECURE") || !strings.Contains(logs.String(), ssh.FingerprintSHA256(s.HostKey)) {
		t.Errorf("no loud warning with the fingerprint: %s", logs.String())
	}
}

// startPut runs Put in the background and waits for its temporary file to
// hold some bytes.
func startPut(t *testing.T, ctx context.Context, c *Client, dir, name string, src deliver.File) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Put(ctx, name, src) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		parts, _ := filepath.Glob(filepath.Join(dir, "."+name+".part-*"))
		if len(parts) > 0 {
			if fi, err := os.Stat(parts[0]); err == nil && fi.Size() > 0 {
				if fi.Size() == src.Size {
					t.Fatal("upload finished before it could be interrupted")
				}
				return done
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Put returned before it could be interrupted: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("upload did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServerStopsMidUpload(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	src := localFile(t, 200*MiB)
	done := startPut(t, ctx, c, cfg.Path, "big.bin", src)
	s.Stop()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Put did not return after the server stopped")
	}
	if err == nil {
		t.Fatal("Put succeeded although the server stopped")
	}
	t.Logf("%v", err)
	if deliver.IsPermanent(err) {
		t.Errorf("lost connection reported as permanent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Path, "big.bin")); err == nil {
		t.Fatal("partial upload visible under the final name")
	}

	// While down: transient.
	if err := c.Put(ctx, "small.bin", localFile(t, 10)); err == nil || deliver.IsPermanent(err) {
		t.Errorf("Put while the server is down = %v, want a transient error", err)
	}

	s.Restart()
	if err := c.Put(ctx, "big.bin", src); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	if sumFile(t, filepath.Join(cfg.Path, "big.bin")) != src.SHA256 {
		t.Fatal("content differs after reconnect")
	}
	noParts(t, cfg.Path) // the cut-off upload's temporary file is gone too
}

func TestHungServer(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	c.keepalive = 300 * time.Millisecond
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	src := localFile(t, 200*MiB)
	done := startPut(t, ctx, c, cfg.Path, "big.bin", src)
	s.Freeze()
	defer s.Thaw()
	select {
	case err := <-done:
		if err == nil || deliver.IsPermanent(err) {
			t.Fatalf("Put to a hung server = %v, want a transient error", err)
		}
		t.Logf("%v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Put hangs on a hung server")
	}
	if _, err := os.Stat(filepath.Join(cfg.Path, "big.bin")); err == nil {
		t.Fatal("partial upload visible under the final name")
	}
	// A new connection (to a fresh connection process) works.
	small := localFile(t, 1000)
	if err := c.Put(ctx, "small.bin", small); err != nil {
		t.Fatalf("Put after the hang: %v", err)
	}
}

func TestCancelMidUpload(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	src := localFile(t, 200*MiB)
	ctx, cancel := context.WithCancel(context.Background())
	done := startPut(t, ctx, c, cfg.Path, "big.bin", src)
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put after cancel = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Path, "big.bin")); err == nil {
		t.Fatal("partial upload visible under the final name")
	}
	// The client dials again.
	if err := c.Put(context.Background(), "small.bin", localFile(t, 10)); err != nil {
		t.Fatalf("Put after cancel: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	cfg.KeyFile = filepath.Join(t.TempDir(), "other")
	if _, err := sshtest.WriteKey(cfg.KeyFile); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, cfg)
	err := c.Put(context.Background(), "x.bin", localFile(t, 10))
	if err == nil || !deliver.IsPermanent(err) {
		t.Fatalf("Put with a wrong key = %v, want a permanent error", err)
	}
	t.Logf("%v", err)
}

func TestPassphraseKey(t *testing.T) {
	s := sshtest.Start(t)
	const secret = "correct-horse-battery-staple"
	key := filepath.Join(t.TempDir(), "enc")
	pub, err := sshtest.WriteKeyWithPassphrase(key, secret)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ak.Write(ssh.MarshalAuthorizedKey(pub)); err != nil {
		t.Fatal(err)
	}
	_ = ak.Close()

	cfg := config(t, s)
	cfg.KeyFile = key
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "EXPORTER_SFTP_KEY_PASSPHRASE") || !deliver.IsPermanent(err) {
		t.Errorf("New without the passphrase = %v", err)
	}
	cfg.KeyPassphrase = "wrong-" + secret
	if _, err := New(cfg); err == nil || strings.Contains(err.Error(), secret) || !deliver.IsPermanent(err) {
		t.Errorf("New with a wrong passphrase = %v", err)
	}
	cfg.KeyPassphrase = secret
	c := newClient(t, cfg)
	if strings.Contains(c.String(), secret) {
		t.Error("String shows the passphrase")
	}
	if err := c.Put(context.Background(), "x.bin", localFile(t, 10)); err != nil {
		t.Fatalf("Put with the encrypted key: %v", err)
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{"PasswordAuthentication": "yes", "KbdInteractiveAuthentication": "yes"})
	const secret = "pa55-w0rd-that-must-not-leak"
	var logs bytes.Buffer
	cfg := config(t, s)
	cfg.KeyFile = ""
	cfg.Password = secret
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, cfg)
	// The test user has no such password (root's is usually locked).
	err := c.Put(context.Background(), "x.bin", localFile(t, 10))
	if err == nil {
		t.Skip("the password was accepted?")
	}
	t.Logf("%v", err)
	if !deliver.IsPermanent(err) {
		t.Errorf("refused password: not permanent: %v", err)
	}
	if !strings.Contains(err.Error(), "tried password") {
		t.Errorf("error does not say password auth was tried: %v", err)
	}
	for _, out := range []string{err.Error(), logs.String(), c.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("password leaked: %s", out)
		}
	}
}

func TestNoSuchPath(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Path = filepath.Join(file, "sub") // under a regular file: cannot be made
	c := newClient(t, cfg)
	err := c.Put(context.Background(), "x.bin", localFile(t, 10))
	if err == nil || !deliver.IsPermanent(err) {
		t.Fatalf("Put under a file = %v, want a permanent error", err)
	}
	t.Logf("%v", err)
}

func TestConnectionRefused(t *testing.T) {
	s := sshtest.Start(t)
	cfg := config(t, s)
	s.Stop()
	c := newClient(t, cfg)
	err := c.Put(context.Background(), "x.bin", localFile(t, 10))
	if err == nil || deliver.IsPermanent(err) {
		t.Fatalf("Put to a stopped server = %v, want a transient error", err)
	}
	t.Logf("%v", err)
}

// TestThroughput compares Put with OpenSSH's sftp client on a 200 MiB file
// over loopback. Run it without -race:
//
//	EXPORTER_SFTP_BENCH=1 go test -run Throughput -v ./internal/deliver/sftp/
func TestThroughput(t *testing.T) {
	if os.Getenv("EXPORTER_SFTP_BENCH") != "1" {
		t.Skip("set EXPORTER_SFTP_BENCH=1 to measure")
	}
	s := sshtest.Start(t)
	cfg := config(t, s)
	c := newClient(t, cfg)
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	src := localFile(t, 200*MiB)
	mbps := func(d time.Duration) float64 { return float64(src.Size) / 1e6 / d.Seconds() }

	for i := range 3 {
		start := time.Now()
		if err := c.Put(ctx, "bench.bin", src); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		t.Logf("exporter sftp Put #%d: %v, %.0f MB/s", i, d, mbps(d))
	}

	client, err := exec.LookPath("sftp")
	if err != nil {
		t.Skip("no OpenSSH sftp client")
	}
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte("put "+src.Path+" "+filepath.Join(cfg.Path, "openssh.bin")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// OpenSSH prefers chacha20-poly1305; x/crypto picks AES-GCM. Time
	// both, and the time includes starting sftp and the handshake.
	for _, cipher := range []string{"default cipher", "aes128-gcm@openssh.com"} {
		for i := range 3 {
			args := []string{"-q", "-b", batch, "-i", s.KeyFile,
				"-o", "UserKnownHostsFile=" + s.KnownHostsFile, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
				"-P", strconv.Itoa(s.Port)}
			if !strings.Contains(cipher, " ") {
				args = append(args, "-o", "Ciphers="+cipher)
			}
			args = append(args, s.User+"@127.0.0.1")
			start := time.Now()
			out, err := exec.Command(client, args...).CombinedOutput()
			d := time.Since(start)
			if err != nil {
				t.Fatalf("sftp: %v\n%s", err, out)
			}
			t.Logf("OpenSSH sftp put (%s) #%d: %v, %.0f MB/s", cipher, i, d, mbps(d))
		}
	}
}
