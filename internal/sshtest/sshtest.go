// Package sshtest runs a throwaway OpenSSH sshd on 127.0.0.1 for tests:
// fresh ed25519 host and user keys, a known_hosts file naming the host
// key, and the internal-sftp subsystem. Tests log in as the current user
// with KeyFile.
//
// When /usr/sbin/sshd is missing, Start skips the test, or fails it when
// EXPORTER_TEST_DISALLOW_SKIP=1 (scripts/install-deps.sh installs
// openssh-server).
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the sshd binary Start runs.
const SSHD = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Addr string // 127.0.0.1:port
	Host string // 127.0.0.1
	Port int
	User string // the current user, who may log in with KeyFile

	KeyFile        string        // the user's private key (OpenSSH format, no passphrase)
	UserKey        ssh.PublicKey // its public half, in AuthorizedKeysFile
	KnownHostsFile string        // one line: HostKey for [127.0.0.1]:port
	HostKey        ssh.PublicKey // the key sshd presents
	AltHostKey     ssh.PublicKey // the key sshd presents after SwapHostKey
	Dir            string        // the folder holding the keys and config

	t          testing.TB
	config     string
	hostKey    string // private key file in use
	altHostKey string

	mu      sync.Mutex
	cmd     *exec.Cmd
	waitErr chan error
	log     *lockedBuffer
	options map[string]string
}

// Options are extra sshd_config lines, keyword to value, such as
// {"PasswordAuthentication": "yes"}.
type Options map[string]string

// Start starts sshd and stops it when the test ends.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		if os.Getenv("EXPORTER_TEST_DISALLOW_SKIP") == "1" {
			t.Fatalf("sshtest: %s not found (run scripts/install-deps.sh to install openssh-server)", SSHD)
		}
		t.Skipf("sshtest: %s not found (run scripts/install-deps.sh to install openssh-server)", SSHD)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshtest: current user: %v", err)
	}
	dir := t.TempDir()
	s := &Server{t: t, Host: "127.0.0.1", User: u.Username, Dir: dir, log: &lockedBuffer{}, options: map[string]string{}}
	for _, o := range opts {
		for k, v := range o {
			s.options[k] = v
		}
	}

	// Privilege separation directory; sshd refuses to start without it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		t.Fatalf("sshtest: %v", err)
	}

	s.hostKey = filepath.Join(dir, "ssh_host_ed25519_key")
	s.altHostKey = filepath.Join(dir, "ssh_host_ed25519_key_alt")
	if s.HostKey, err = WriteKey(s.hostKey); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	if s.AltHostKey, err = WriteKey(s.altHostKey); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	s.KeyFile = filepath.Join(dir, "id_ed25519")
	if s.UserKey, err = WriteKey(s.KeyFile); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(s.UserKey), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}

	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshtest: sshd log:\n%s", s.log.String())
		}
	})

	// A free port can be taken between probing and sshd binding it; retry.
	var lastErr error
	for range 5 {
		s.Port, err = freePort()
		if err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
		s.config = filepath.Join(dir, "sshd_config")
		if err := s.writeConfig(); err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		if err := s.writeKnownHosts(); err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("sshtest: start sshd: %v\n%s", lastErr, s.log.String())
	return nil
}

// WriteKey writes a new ed25519 private key to path in OpenSSH format
// (mode 0600, no passphrase) and returns its public key.
func WriteKey(path string) (ssh.PublicKey, error) {
	return WriteKeyWithPassphrase(path, "")
}

// WriteKeyWithPassphrase is WriteKey with the key encrypted by passphrase
// (none when empty).
func WriteKeyWithPassphrase(path, passphrase string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "sshtest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "sshtest", []byte(passphrase))
	}
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		return nil, err
	}
	return sp, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) writeConfig() error {
	opts := map[string]string{
		"PasswordAuthentication":       "no",
		"KbdInteractiveAuthentication": "no",
		"PermitRootLogin":              "yes",
	}
	for k, v := range s.options {
		opts[k] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Port %d\n", s.Port)
	fmt.Fprintf(&b, "ListenAddress %s\n", s.Host)
	fmt.Fprintf(&b, "HostKey %s\n", s.hostKey)
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	b.WriteString("UsePAM no\nStrictModes no\nPubkeyAuthentication yes\nLogLevel VERBOSE\n")
	for k, v := range opts {
		fmt.Fprintf(&b, "%s %s\n", k, v)
	}
	b.WriteString("Subsystem sftp internal-sftp\n")
	return os.WriteFile(s.config, []byte(b.String()), 0o600)
}

func (s *Server) writeKnownHosts() error {
	s.KnownHostsFile = filepath.Join(s.Dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	return os.WriteFile(s.KnownHostsFile, []byte(line+"\n"), 0o600)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", s.config)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// Connection processes inherit the log pipe; do not wait on them
	// forever once sshd itself has exited.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	s.cmd, s.waitErr = cmd, waitErr

	// Ready when it answers with its banner.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-waitErr:
			s.cmd = nil
			return fmt.Errorf("sshd exited: %v", err)
		default:
		}
		if banner(s.Addr) {
			return nil
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return errors.New("sshd did not answer within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 8)
	n, _ := c.Read(b)
	return bytes.HasPrefix(b[:n], []byte("SSH-"))
}

// Stop stops sshd and kills its connection processes, so clients see
// their connections drop as if the server went away. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	// sshd's per-connection children call setsid, so they are not in its
	// process group: find them through /proc before the parent goes.
	kids := descendants(pid)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	select {
	case <-s.waitErr:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.waitErr
	}
	// Children forked after the snapshot.
	for _, k := range descendants(pid) {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	s.cmd = nil
}

// Restart stops sshd and starts it again on the same port with the same
// host key.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("sshtest: restart sshd: %v\n%s", err, s.log.String())
	}
}

// SwapHostKey restarts sshd presenting AltHostKey instead of HostKey
// (known_hosts is left as it was), as when a server's key changes or a
// different machine answers at its address. Calling it again swaps back.
func (s *Server) SwapHostKey() {
	s.t.Helper()
	s.Stop()
	s.hostKey, s.altHostKey = s.altHostKey, s.hostKey
	s.HostKey, s.AltHostKey = s.AltHostKey, s.HostKey
	if err := s.writeConfig(); err != nil {
		s.t.Fatalf("sshtest: %v", err)
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("sshtest: restart sshd: %v\n%s", err, s.log.String())
	}
}

// Freeze stops (SIGSTOP) sshd's connection processes, so open connections
// hang without closing, as with a hung server or a dead network path.
// New connections are still accepted. Thaw undoes it; Stop kills them
// either way.
func (s *Server) Freeze() { s.signalConnections(syscall.SIGSTOP) }

// Thaw resumes connection processes stopped by Freeze.
func (s *Server) Thaw() { s.signalConnections(syscall.SIGCONT) }

func (s *Server) signalConnections(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	for _, k := range descendants(s.cmd.Process.Pid) {
		_ = syscall.Kill(k, sig)
	}
}

// Log returns what sshd has written so far.
func (s *Server) Log() string { return s.log.String() }

// descendants lists the pids descending from pid, from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		parent[p] = pp
	}
	var out []int
	want := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if want[pp] && !want[p] {
				want[p] = true
				out = append(out, p)
				changed = true
			}
		}
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
