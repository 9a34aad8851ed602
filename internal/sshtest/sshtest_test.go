package sshtest

import (
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, s *Server) (*ssh.Client, error) {
	t.Helper()
	b, err := os.ReadFile(s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:              s.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	})
}

func TestStartLoginRestartSwap(t *testing.T) {
	s := Start(t)
	c, err := dial(t, s)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("sftp subsystem: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	// Stop drops live connections.
	s.Stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection survived Stop")
	}
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Fatal("port still open after Stop")
	}

	s.Restart()
	c, err = dial(t, s)
	if err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
	c.Close()

	old := s.HostKey
	s.SwapHostKey()
	if _, err := dial(t, s); err == nil {
		t.Fatal("changed host key accepted")
	} else {
		t.Logf("changed key: %v", err)
	}
	if string(s.HostKey.Marshal()) == string(old.Marshal()) {
		t.Fatal("HostKey not swapped")
	}
}
