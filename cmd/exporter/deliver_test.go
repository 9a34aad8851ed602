package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/exporter-dev/exporter/internal/s3test"
	"github.com/exporter-dev/exporter/internal/sshtest"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDeliverToS3AndSFTP delivers one multi-file export to a local folder,
// a real S3-compatible server (versitygw) and a real sshd at once, compares
// what each holds with the manifest, and checks that a re-run skips it all.
func TestDeliverToS3AndSFTP(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE dl (id int PRIMARY KEY, v text); INSERT INTO dl SELECT i, md5(i::text) FROM generate_series(1, 3000) i;`)
	s3srv := s3test.Start(t, true) // over TLS
	s3srv.SetEnv(t)
	s3srv.CreateBucket(t, "drop")
	ssh := sshtest.Start(t)
	remote := filepath.Join(t.TempDir(), "sftp-drop")
	local := t.TempDir()
	const pw = "never-shown-passphrase"
	env := map[string]string{"EXPORTER_SFTP_KEY_PASSPHRASE": pw}
	args := []string{"export", "--dsn", dsn, "--query", "SELECT * FROM dl", "--key", "id",
		"--format", "xlsx", "--format", "csv", "--max-rows-per-file", "1000", "--name", "dl",
		"--out", local,
		"--out", "s3://drop/exports/", "--s3-endpoint", s3srv.Endpoint, "--s3-path-style", "--presign", "1h",
		"--out", fmt.Sprintf("sftp://%s@%s:%d%s/", ssh.User, "127.0.0.1", ssh.Port, remote),
		"--sftp-key", ssh.KeyFile, "--sftp-known-hosts", ssh.KnownHostsFile,
		"--log-format", "json", "--retries", "2", "--retry-max-wait", "1s"}
	r := runCLI(t, env, args...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stdout, "delivered\t") != 3 || !strings.Contains(r.stdout, "7 files sent, 0 skipped") {
		t.Fatalf("report:\n%s", r.stdout)
	}
	m := readManifest(t, local)
	if len(m.Files) != 6 {
		t.Fatalf("%d files in the manifest, want 3 xlsx + 3 csv", len(m.Files))
	}
	client := s3srv.Client(t)
	get := func(key string) []byte {
		out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("drop"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, f := range m.Files {
		for where, b := range map[string][]byte{"local": mustReadBytes(t, filepath.Join(local, f.Name)), "s3": get("exports/" + f.Name), "sftp": mustReadBytes(t, filepath.Join(remote, f.Name))} {
			if int64(len(b)) != f.Bytes || sha(b) != f.SHA256 {
				t.Errorf("%s %s: %d bytes sha %s, manifest says %d %s", where, f.Name, len(b), sha(b), f.Bytes, f.SHA256)
			}
		}
	}
	// The S3 manifest carries presigned URLs that download the files.
	var s3m struct {
		Files []struct{ Name, URL, SHA256 string }
	}
	if err := json.Unmarshal(get("exports/manifest.json"), &s3m); err != nil {
		t.Fatal(err)
	}
	if len(s3m.Files) == 0 || s3m.Files[0].URL == "" || !strings.Contains(r.stdout, "url\t"+s3m.Files[0].Name) {
		t.Fatalf("no presigned URL in the S3 manifest or the report: %+v", s3m)
	}
	resp, err := httpClientFor(t, s3srv).Get(s3m.Files[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || sha(body) != s3m.Files[0].SHA256 {
		t.Fatalf("presigned GET: %d, sha %s", resp.StatusCode, sha(body))
	}
	for _, secret := range []string{pw, os.Getenv("AWS_SECRET_ACCESS_KEY")} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("output shows a secret")
		}
	}
	// A re-run finds every data file in place and sends only manifests.
	r = runCLI(t, env, args...)
	if r.code != 0 || strings.Count(r.stdout, "1 files sent, 6 skipped") != 3 {
		t.Fatalf("re-run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDeliveryFailureIsReported checks that a destination that cannot be
// reached fails on its own, with exit 6, while the others are delivered.
func TestDeliveryFailureIsReported(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE df (id int PRIMARY KEY); INSERT INTO df SELECT generate_series(1, 10);`)
	ssh := sshtest.Start(t)
	local := t.TempDir()
	other := sshtest.Start(t) // its host key is not in ssh's known_hosts file
	r := runCLI(t, nil, "export", "--dsn", dsn, "--query", "SELECT * FROM df", "--key", "id", "--format", "csv",
		"--out", local,
		"--out", fmt.Sprintf("sftp://%s@127.0.0.1:%d%s/", other.User, other.Port, t.TempDir()),
		"--sftp-key", ssh.KeyFile, "--sftp-known-hosts", ssh.KnownHostsFile, "--retries", "3", "--retry-max-wait", "100ms")
	if r.code != exitOutput {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitOutput, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "delivered\t"+local) || !strings.Contains(r.stdout, "failed\tsftp://") || !strings.Contains(r.stdout, "SHA256:") {
		t.Fatalf("report does not show one delivered and one failed with the host key fingerprint:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, "retrying") {
		t.Fatalf("a refused host key was retried:\n%s", r.stderr)
	}
}

// watchWriter collects what is written and closes seen when want appears.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func mustReadBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpClientFor trusts the test server's certificate.
func httpClientFor(t *testing.T, srv *s3test.Server) *http.Client {
	t.Helper()
	return testHTTPClient(t, srv.CAFile)
}

// TestDeliveryRetriesUntilServersReturn stops both servers before the
// export and starts them again a few seconds later: delivery is retried
// with backoff until it succeeds, and every file arrives whole.
func TestDeliveryRetriesUntilServersReturn(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE rt (id int PRIMARY KEY, v text); INSERT INTO rt SELECT i, md5(i::text) FROM generate_series(1, 2000) i;`)
	s3srv := s3test.Start(t, false)
	s3srv.SetEnv(t)
	s3srv.CreateBucket(t, "drop")
	ssh := sshtest.Start(t)
	remote := filepath.Join(t.TempDir(), "drop")
	s3srv.Stop()
	ssh.Stop()
	// Start them again once delivery has failed and is being retried.
	stderr := &watchWriter{want: "deliver: retrying", seen: make(chan struct{})}
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		select {
		case <-stderr.seen:
		case <-time.After(2 * time.Minute):
		}
		s3srv.Restart()
		ssh.Restart()
	}()
	var stdout bytes.Buffer
	code := run(context.Background(), []string{"export", "--dsn", dsn, "--query", "SELECT * FROM rt", "--key", "id", "--format", "csv", "--format", "xlsx",
		// SFTP first: a refused connection is ours to retry. The S3 SDK
		// retries each request itself before our retry sees an error.
		"--out", fmt.Sprintf("sftp://%s@127.0.0.1:%d%s/", ssh.User, ssh.Port, remote),
		"--sftp-key", ssh.KeyFile, "--sftp-known-hosts", ssh.KnownHostsFile,
		"--out", "s3://drop/r/", "--s3-endpoint", s3srv.Endpoint, "--s3-path-style",
		"--retries", "30", "--retry-max-wait", "1s", "--log-format", "json"}, &stdout, stderr, func(string) string { return "" })
	r := result{code, stdout.String(), stderr.String()}
	<-restarted
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "deliver: retrying") || strings.Count(r.stdout, "delivered\t") != 2 {
		t.Fatalf("expected retries, then two deliveries:\n%s\n%s", r.stdout, r.stderr)
	}
	for _, name := range []string{"export-0001.csv", "export-0001.xlsx", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(remote, name)); err != nil {
			t.Errorf("sftp: %v", err)
		}
		if _, err := s3srv.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("drop"), Key: aws.String("r/" + name)}); err != nil {
			t.Errorf("s3 %s: %v", name, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(remote, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left on the SFTP server: %v", left)
	}
}
