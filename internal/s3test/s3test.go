// Package s3test runs a real S3-compatible server for tests: versitygw
// with its posix backend in a temporary directory, over plain HTTP or over
// TLS with a throwaway self-signed certificate.
//
// versitygw is a test tool pinned in tools/go.mod, outside the main
// module. It is found on PATH, in $GOBIN or in $(go env GOPATH)/bin; when
// missing, the first test to need it runs
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// under a lock file, so parallel test binaries build it once (about a
// minute on two cores). Tests skip when it cannot be had, and fail instead
// when EXPORTER_TEST_DISALLOW_SKIP=1.
package s3test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Module and Version of the pinned versitygw (keep in step with
// tools/go.mod).
const (
	Module  = "github.com/versity/versitygw/cmd/versitygw"
	Version = "v1.8.0"
)

// Region the server answers for.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	// Endpoint is the base URL, http://127.0.0.1:PORT or https://...
	Endpoint  string
	AccessKey string
	SecretKey string
	// CAFile is the PEM file of the self-signed certificate the server
	// presents (empty over plain HTTP): set AWS_CA_BUNDLE to it.
	CAFile string
	// Dir is the posix backend's root: one directory per bucket.
	Dir string
	TLS bool

	t       testing.TB
	bin     string
	addr    string
	certDir string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs versitygw on a free loopback port, over TLS when useTLS. It
// is stopped when the test ends.
func Start(t testing.TB, useTLS bool) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{
		AccessKey: "AKTEST" + strings.ToUpper(randHex(7)),
		SecretKey: "sk-" + randHex(20),
		Dir:       filepath.Join(t.TempDir(), "root"),
		TLS:       useTLS,
		t:         t,
		bin:       bin,
	}
	aux := t.TempDir()
	s.logPath = filepath.Join(aux, "versitygw.log")
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if useTLS {
		s.certDir = aux
		ca, err := writeSelfSigned(aux)
		if err != nil {
			t.Fatalf("s3test: certificate: %v", err)
		}
		s.CAFile = ca
		scheme = "https"
	}
	var err error
	for range 3 { // a free port can be taken between probe and listen
		s.addr, err = freePort()
		if err != nil {
			t.Fatal(err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("s3test: start versitygw: %v\n%s", err, s.logTail())
	}
	s.Endpoint = scheme + "://" + s.addr
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	args := []string{"--port", s.addr, "--quiet"}
	if s.TLS {
		args = append(args, "--cert", filepath.Join(s.certDir, "cert.pem"), "--key", filepath.Join(s.certDir, "key.pem"))
	}
	args = append(args, "posix", s.Dir)
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(cleanEnv(os.Environ()),
		"ROOT_ACCESS_KEY="+s.AccessKey,
		"ROOT_SECRET_KEY="+s.SecretKey,
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := s.probe(); err == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("versitygw exited at start")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("versitygw not listening on %s after 20s", s.addr)
		}
	}
}

// probe connects (with a TLS handshake over TLS).
func (s *Server) probe() error {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if !s.TLS {
		return nil
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(pem)
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	_ = tc.SetDeadline(time.Now().Add(time.Second))
	return tc.Handshake()
}

// Stop kills the server at once, as a crash or a lost network would; the
// data directory stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 50 { // the port may linger a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("s3test: restart versitygw: %v\n%s", err, s.logTail())
}

// SetEnv points the AWS SDK's default chain at this server for the test:
// credentials, region and, over TLS, AWS_CA_BUNDLE; profile, role and
// endpoint variables from the outside are cleared.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", Region)
	// Empty shared files, so a developer's ~/.aws never leaks in.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if s.CAFile != "" {
		t.Setenv("AWS_CA_BUNDLE", s.CAFile)
	}
}

// Client is a plain SDK client for checks behind the code under test,
// configured without the environment.
func (s *Server) Client(t testing.TB) *s3.Client {
	t.Helper()
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")),
		config.WithSharedConfigFiles(nil),
		config.WithSharedCredentialsFiles(nil),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatalf("s3test: client config: %v", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.Endpoint)
		o.UsePathStyle = true
	})
}

// CreateBucket makes a bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	_, err := s.Client(t).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// cleanEnv drops AWS_ and VGW_ settings from the server's environment.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeSelfSigned writes cert.pem and key.pem for 127.0.0.1, ::1 and
// localhost to dir and returns the certificate's path (it is its own CA).
func writeSelfSigned(dir string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "s3test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	certPath := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", err
	}
	return certPath, nil
}
