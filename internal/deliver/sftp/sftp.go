// Package sftp delivers files to a folder on an SFTP server.
//
// Each file is uploaded to a temporary name in the target folder
// (.NAME.part-XXXXXXXX), checked for size, and renamed into place, so a
// client polling the folder never sees a partial file under the final
// name. The host key is checked against known_hosts; an unknown or changed
// key is refused unless InsecureAcceptHostKey is set.
//
// The connection is made on first use and kept; when it is lost, the next
// call dials again. Put does not retry: errors are classified as permanent
// (deliver.Permanent) or transient for the retry decorator.
package sftp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/exporter-dev/exporter/internal/deliver"
)

// Config describes the server, the folder and how to log in. Secrets
// (KeyPassphrase, Password) never appear in errors or logs.
type Config struct {
	User string
	Host string
	Port int    // 22 when 0
	Path string // remote folder; relative paths are relative to the login folder

	KeyFile       string // private key (OpenSSH, PKCS#1/8 PEM)
	KeyPassphrase string // for an encrypted KeyFile (EXPORTER_SFTP_KEY_PASSPHRASE)
	Password      string // password authentication (EXPORTER_SFTP_PASSWORD)
	UseAgent      bool   // offer the keys of the ssh-agent at SSH_AUTH_SOCK

	KnownHostsFile        string // ~/.ssh/known_hosts when empty
	InsecureAcceptHostKey bool   // accept any host key (logged loudly)

	ConnectTimeout time.Duration // TCP connect plus SSH handshake; 30s when 0
	Logger         *slog.Logger  // slog.Default() when nil
}

// Client is an SFTP destination. It is safe for concurrent use.
type Client struct {
	cfg        Config
	addr       string
	signers    []ssh.Signer // from KeyFile
	knownHosts string       // resolved path, "" when InsecureAcceptHostKey
	log        *slog.Logger

	// keepalive is how often the connection is probed; a probe not
	// answered within keepalive drops it.
	keepalive time.Duration

	mu      sync.Mutex
	conn    *conn
	orphans []string // temporary files a lost connection left behind
}

var (
	_ deliver.Destination = (*Client)(nil)
	_ deliver.Remover     = (*Client)(nil)
	_ deliver.Checker     = (*Client)(nil)
	_ deliver.Closer      = (*Client)(nil)
)

// ParseURL splits sftp://user@host[:port]/path/ into its parts. The port is
// 22 when absent. The path is taken as written (absolute), except that a
// leading /~/ makes it relative to the login folder. A password in the URL
// is refused: pass it through EXPORTER_SFTP_PASSWORD instead.
func ParseURL(s string) (user, host string, port int, p string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the input, which may hold a password.
		return "", "", 0, "", errors.New("sftp: malformed URL (want sftp://user@host[:port]/path/)")
	}
	if u.Scheme != "sftp" {
		return "", "", 0, "", fmt.Errorf("sftp: URL scheme is %q, want sftp://user@host[:port]/path/", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return "", "", 0, "", errors.New("sftp: URL has no user (want sftp://user@host[:port]/path/)")
	}
	if _, ok := u.User.Password(); ok {
		return "", "", 0, "", errors.New("sftp: do not put a password in the URL; set EXPORTER_SFTP_PASSWORD instead")
	}
	host = u.Hostname()
	if host == "" {
		return "", "", 0, "", errors.New("sftp: URL has no host (want sftp://user@host[:port]/path/)")
	}
	port = 22
	if ps := u.Port(); ps != "" {
		port, err = strconv.Atoi(ps)
		if err != nil || port < 1 || port > 65535 {
			return "", "", 0, "", fmt.Errorf("sftp: bad port %q in URL", ps)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", 0, "", errors.New("sftp: URL must not have a query or fragment")
	}
	p = u.Path
	switch {
	case p == "" || p == "/~" || p == "/~/":
		p = "."
	case strings.HasPrefix(p, "/~/"):
		p = strings.TrimPrefix(p, "/~/")
	}
	return u.User.Username(), host, port, p, nil
}

// New checks cfg and loads the key file; it does not connect (the first
// call does; see Connect).
func New(cfg Config) (*Client, error) {
	if cfg.Host == "" {
		return nil, errors.New("sftp: no host")
	}
	if cfg.User == "" {
		return nil, errors.New("sftp: no user")
	}
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("sftp: bad port %d", cfg.Port)
	}
	if cfg.Path == "" {
		cfg.Path = "."
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	c := &Client{
		cfg:       cfg,
		addr:      net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		log:       cfg.Logger,
		keepalive: 30 * time.Second,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if cfg.KeyFile == "" && !cfg.UseAgent && cfg.Password == "" {
		return nil, deliver.Permanent(errors.New("sftp: no way to log in: give a key file, use the ssh-agent, or set EXPORTER_SFTP_PASSWORD"))
	}
	if cfg.KeyFile != "" {
		s, err := loadKey(cfg.KeyFile, cfg.KeyPassphrase)
		if err != nil {
			return nil, deliver.Permanent(err)
		}
		c.signers = append(c.signers, s)
	}
	if cfg.UseAgent && os.Getenv("SSH_AUTH_SOCK") == "" {
		return nil, deliver.Permanent(errors.New("sftp: ssh-agent requested but SSH_AUTH_SOCK is not set"))
	}
	if !cfg.InsecureAcceptHostKey {
		c.knownHosts = cfg.KnownHostsFile
		if c.knownHosts == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, deliver.Permanent(fmt.Errorf("sftp: no known_hosts file given and no home folder: %w", err))
			}
			c.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
		}
		// Fail early on an unreadable or malformed file; a missing one
		// only means every host is unknown.
		if _, err := hostKeyDB(c.knownHosts); err != nil {
			return nil, deliver.Permanent(err)
		}
	}
	return c, nil
}

func loadKey(file, passphrase string) (ssh.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("sftp: key file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, fmt.Errorf("sftp: key file %s is encrypted: set EXPORTER_SFTP_KEY_PASSPHRASE", file)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(b, []byte(passphrase))
		if err != nil {
			// The error of x/crypto does not hold the passphrase, but
			// say only what is needed.
			return nil, fmt.Errorf("sftp: key file %s: cannot decrypt it (wrong passphrase?)", file)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sftp: key file %s: %w", file, err)
	}
	return s, nil
}

// hostKeyDB returns a known_hosts callback for file; a missing file is an
// empty one.
func hostKeyDB(file string) (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return knownhosts.New()
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("sftp: known_hosts: %w", err)
	}
	return cb, nil
}

// String names the destination without secrets: sftp://user@host:port/path.
func (c *Client) String() string {
	p := c.cfg.Path
	if !strings.HasPrefix(p, "/") {
		p = "/~/" + strings.TrimPrefix(p, "./")
		p = strings.TrimSuffix(p, "/.")
	}
	return "sftp://" + c.cfg.User + "@" + c.addr + p
}

// conn is one SSH connection with its SFTP session.
type conn struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	done chan struct{} // closed when the SSH connection ends

	posixRename bool

	mu   sync.Mutex
	dirs map[string]bool // folders known to exist
}

func (cn *conn) dead() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

func (cn *conn) close() {
	// SSH first: closing the SFTP client waits for its write lock, which a
	// writer stuck on a full window of a hung server holds forever.
	_ = cn.ssh.Close()
	_ = cn.sftp.Close()
}

// Connect dials now (if not yet connected) and makes sure the folder
// exists, to check the settings before any work.
func (c *Client) Connect(ctx context.Context) error {
	cn, err := c.get(ctx)
	if err != nil {
		return err
	}
	if err := c.mkdirAll(cn, c.cfg.Path); err != nil {
		return c.fail(ctx, cn, "create folder "+c.cfg.Path, err)
	}
	return nil
}

// get returns the live connection, dialing when there is none.
func (c *Client) get(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && !c.conn.dead() {
		return c.conn, nil
	}
	if c.conn != nil {
		c.conn.close()
		c.conn = nil
	}
	cn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = cn
	return cn, nil
}

// drop forgets cn (if still current) and closes it.
func (c *Client) drop(cn *conn) {
	c.mu.Lock()
	if c.conn == cn {
		c.conn = nil
	}
	c.mu.Unlock()
	cn.close()
}

// Close closes the connection, if any. A later call connects again.
func (c *Client) Close() error {
	c.mu.Lock()
	cn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if cn != nil {
		cn.close()
	}
	return nil
}

// hostKeyError is a refused host key; always permanent.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

func (c *Client) hostKeyCallback(refused *error) (ssh.HostKeyCallback, []string, error) {
	if c.cfg.InsecureAcceptHostKey {
		return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			c.log.Warn("sftp: INSECURE: accepting the host key without checking it; anyone on the network path can read and change what is sent",
				"host", c.addr, "key_type", key.Type(), "fingerprint", ssh.FingerprintSHA256(key))
			return nil
		}, nil, nil
	}
	db, err := hostKeyDB(c.knownHosts)
	if err != nil {
		return nil, nil, deliver.Permanent(err)
	}
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := db(hostname, remote, key)
		if err == nil {
			return nil
		}
		*refused = c.describeHostKeyError(err, key)
		return *refused
	}
	return cb, c.knownAlgorithms(db), nil
}

func (c *Client) describeHostKeyError(err error, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	host := knownhosts.Normalize(c.addr)
	scan := "ssh-keyscan"
	if c.cfg.Port != 22 {
		scan += " -p " + strconv.Itoa(c.cfg.Port)
	}
	scan += " -t " + strings.TrimPrefix(key.Type(), "ssh-") + " " + c.cfg.Host + " >> " + c.knownHosts
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return &hostKeyError{fmt.Sprintf("sftp: host key of %s (%s %s) is marked @revoked in %s; refusing to connect",
			host, key.Type(), fp, re.Revoked.Filename)}
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return &hostKeyError{fmt.Sprintf("sftp: host %s is not in %s; it offered the %s key %s. "+
			"If that fingerprint is right (ask the server's administrator), add the key with: %s",
			host, c.knownHosts, key.Type(), fp, scan)}
	case errors.As(err, &ke):
		var known []string
		for _, w := range ke.Want {
			known = append(known, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
		}
		return &hostKeyError{fmt.Sprintf("sftp: HOST KEY CHANGED for %s: it offered the %s key %s, but %s knows %s. "+
			"Someone may be intercepting the connection, or the server's key was replaced. "+
			"If the change is expected (ask the server's administrator), remove the old entry with "+
			"ssh-keygen -R '%s' -f %s and add the new one with: %s",
			host, key.Type(), fp, c.knownHosts, strings.Join(known, ", "), host, c.knownHosts, scan)}
	default:
		return &hostKeyError{fmt.Sprintf("sftp: host key of %s (%s %s) refused: %v", host, key.Type(), fp, err)}
	}
}

// knownAlgorithms lists the host key algorithms known_hosts holds for the
// server, so the handshake asks for a key that can be checked rather than
// the server's first preference (nil: let the handshake choose).
func (c *Client) knownAlgorithms(db ssh.HostKeyCallback) []string {
	tcp, err := net.ResolveTCPAddr("tcp", c.addr)
	if err != nil {
		tcp = &net.TCPAddr{IP: net.IPv4zero, Port: c.cfg.Port}
	}
	var ke *knownhosts.KeyError
	if err := db(c.addr, tcp, probeKey{}); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
			add(ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// probeKey is a key no known_hosts line holds, to list the lines that
// name a host.
type probeKey struct{}

func (probeKey) Type() string                        { return "exporter-probe" }
func (probeKey) Marshal() []byte                     { return []byte("exporter-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

// auth lists the login methods; started is set once the server asks for
// them, so a failed handshake after that is a refused login.
func (c *Client) auth(started *atomic.Bool, tried *methodList) (methods []ssh.AuthMethod, closeAgent func()) {
	closeAgent = func() {}
	signers := c.signers
	if c.cfg.UseAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if ac, err := net.Dial("unix", sock); err != nil {
				c.log.Warn("sftp: cannot reach the ssh-agent", "err", err)
			} else {
				closeAgent = func() { _ = ac.Close() }
				if as, err := agent.NewClient(ac).Signers(); err != nil {
					c.log.Warn("sftp: ssh-agent keys", "err", err)
				} else {
					signers = append(signers[:len(signers):len(signers)], as...)
				}
			}
		}
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			started.Store(true)
			tried.add(fmt.Sprintf("publickey (%d keys)", len(signers)))
			return signers, nil
		}))
	}
	if c.cfg.Password != "" {
		pw := c.cfg.Password
		methods = append(methods,
			ssh.PasswordCallback(func() (string, error) {
				started.Store(true)
				tried.add("password")
				return pw, nil
			}),
			// Servers that take passwords through PAM ask this way.
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				started.Store(true)
				tried.add("keyboard-interactive")
				answers := make([]string, len(questions))
				for i := range questions {
					if !echos[i] {
						answers[i] = pw
					}
				}
				return answers, nil
			}))
	}
	return methods, closeAgent
}

// methodList records the login methods tried, for the error message.
type methodList struct {
	mu    sync.Mutex
	names []string
}

func (m *methodList) add(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.names, name) {
		m.names = append(m.names, name)
	}
}

func (m *methodList) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.names) == 0 {
		return "no method the server accepts"
	}
	return strings.Join(m.names, ", ")
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	var refused error
	hkcb, algos, err := c.hostKeyCallback(&refused)
	if err != nil {
		return nil, err
	}
	var authStarted atomic.Bool
	var tried methodList
	methods, closeAgent := c.auth(&authStarted, &tried)
	defer closeAgent()
	if len(methods) == 0 {
		return nil, deliver.Permanent(errors.New("sftp: no way to log in (no key file, no ssh-agent keys, no password)"))
	}
	cfg := &ssh.ClientConfig{
		User:              c.cfg.User,
		Auth:              methods,
		HostKeyCallback:   hkcb,
		HostKeyAlgorithms: algos,
		Timeout:           c.cfg.ConnectTimeout,
	}

	deadline := time.Now().Add(c.cfg.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("sftp: connect to %s: %w", c.addr, err)
	}
	// ClientConfig.Timeout covers only the TCP connect: bound the SSH
	// handshake and SFTP start with a deadline, and abort them when ctx
	// ends.
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, c.addr, cfg)
	if err != nil {
		stop()
		_ = nc.Close()
		switch {
		case refused != nil:
			return nil, deliver.Permanent(refused)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case authStarted.Load() && !connectionLost(err), strings.Contains(err.Error(), "unable to authenticate"):
			return nil, deliver.Permanent(fmt.Errorf("sftp: %s@%s: login refused (tried %s): %w", c.cfg.User, c.addr, tried.String(), err))
		}
		return nil, fmt.Errorf("sftp: ssh handshake with %s: %w", c.addr, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if !stop() {
		// ctx ended: the deadline was pulled in.
		if err == nil {
			_ = sc2.Close()
		}
		_ = client.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		_ = client.Close()
		if strings.Contains(err.Error(), "subsystem request failed") {
			return nil, deliver.Permanent(fmt.Errorf("sftp: %s has no SFTP service: %w", c.addr, err))
		}
		return nil, fmt.Errorf("sftp: start SFTP on %s: %w", c.addr, err)
	}
	_ = nc.SetDeadline(time.Time{})

	_, posix := sc2.HasExtension("posix-rename@openssh.com")
	cn := &conn{ssh: client, sftp: sc2, done: make(chan struct{}), posixRename: posix, dirs: map[string]bool{}}
	go func() {
		_ = client.Wait()
		close(cn.done)
	}()
	go c.keepAlive(cn)
	c.log.Debug("sftp: connected", "dest", c.String(), "posix_rename", posix)
	return cn, nil
}

// keepAlive probes the server every c.keepalive; a probe that fails or
// is not answered in time closes the connection, so the next call dials
// again rather than waiting on a dead one.
func (c *Client) keepAlive(cn *conn) {
	t := time.NewTicker(c.keepalive)
	defer t.Stop()
	for {
		select {
		case <-cn.done:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := cn.ssh.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		timer := time.NewTimer(c.keepalive)
		select {
		case err := <-res:
			timer.Stop()
			if err != nil {
				c.log.Debug("sftp: keepalive failed; dropping the connection", "dest", c.String(), "err", err)
				c.drop(cn)
				return
			}
		case <-timer.C:
			c.log.Warn("sftp: server did not answer a keepalive; dropping the connection", "dest", c.String())
			c.drop(cn)
			return
		case <-cn.done:
			timer.Stop()
			return
		}
	}
}

// remote maps a file name to its remote path, refusing names that leave
// the folder.
func (c *Client) remote(name string) (string, error) {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == "." || name == ".." || strings.HasPrefix(name, "../") {
		return "", deliver.Permanent(fmt.Errorf("sftp: file name %q must be a plain relative path", name))
	}
	return path.Join(c.cfg.Path, name), nil
}

func (c *Client) mkdirAll(cn *conn, dir string) error {
	cn.mu.Lock()
	ok := cn.dirs[dir]
	cn.mu.Unlock()
	if ok {
		return nil
	}
	if err := cn.sftp.MkdirAll(dir); err != nil {
		return err
	}
	cn.mu.Lock()
	cn.dirs[dir] = true
	cn.mu.Unlock()
	return nil
}

// Put uploads src to a temporary name beside the final one, checks its
// size, and renames it into place.
func (c *Client) Put(ctx context.Context, name string, src deliver.File) (err error) {
	final, err := c.remote(name)
	if err != nil {
		return err
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return deliver.Permanent(fmt.Errorf("sftp: put %s: %w", name, err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return deliver.Permanent(fmt.Errorf("sftp: put %s: %w", name, err))
	} else if fi.Size() != src.Size {
		return deliver.Permanent(fmt.Errorf("sftp: put %s: local file %s has %d bytes, expected %d", name, src.Path, fi.Size(), src.Size))
	}

	cn, err := c.get(ctx)
	if err != nil {
		return err
	}
	// pkg/sftp calls take no context: close the connection if ctx ends
	// mid-call (the next call dials again).
	stop := context.AfterFunc(ctx, func() { c.drop(cn) })
	defer stop()

	c.removeOrphans(cn)
	dir := path.Dir(final)
	if err := c.mkdirAll(cn, dir); err != nil {
		return c.fail(ctx, cn, "create folder "+dir, err)
	}

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, "."+path.Base(final)+".part-"+hex.EncodeToString(rnd[:]))
	defer func() {
		if err == nil {
			return
		}
		if cn.dead() {
			c.mu.Lock()
			c.orphans = append(c.orphans, tmp)
			c.mu.Unlock()
			return
		}
		_ = cn.sftp.Remove(tmp) // best effort
	}()

	rf, err := cn.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return c.fail(ctx, cn, "create "+tmp, err)
	}
	n, err := rf.ReadFrom(f)
	if err != nil {
		_ = rf.Close()
		return c.fail(ctx, cn, "upload "+name, err)
	}
	if err := rf.Close(); err != nil {
		return c.fail(ctx, cn, "upload "+name, err)
	}
	if n != src.Size {
		return c.fail(ctx, cn, "upload "+name, fmt.Errorf("sent %d bytes of %d", n, src.Size))
	}
	// The sequential ReadFrom of pkg/sftp can lose the error of a failed
	// last write: trust the server's size, not the count.
	fi, err := cn.sftp.Stat(tmp)
	if err != nil {
		return c.fail(ctx, cn, "check "+tmp, err)
	}
	if fi.Size() != src.Size {
		return c.fail(ctx, cn, "upload "+name, fmt.Errorf("server holds %d bytes of %d", fi.Size(), src.Size))
	}
	if err := c.rename(cn, tmp, final); err != nil {
		return c.fail(ctx, cn, "rename into "+final, err)
	}
	return nil
}

// removeOrphans removes, best effort, temporary files of uploads cut off
// by a lost connection.
func (c *Client) removeOrphans(cn *conn) {
	c.mu.Lock()
	orphans := c.orphans
	c.orphans = nil
	c.mu.Unlock()
	for _, p := range orphans {
		if err := cn.sftp.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Debug("sftp: cannot remove a leftover temporary file", "dest", c.String(), "file", p, "err", err)
		}
	}
}

// rename moves tmp over final. OpenSSH's plain rename refuses an existing
// target, so use posix-rename when offered; otherwise rename, and if that
// fails, remove the target and rename again.
func (c *Client) rename(cn *conn, tmp, final string) error {
	if cn.posixRename {
		return cn.sftp.PosixRename(tmp, final)
	}
	if err := cn.sftp.Rename(tmp, final); err == nil {
		return nil
	}
	if err := cn.sftp.Remove(final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return cn.sftp.Rename(tmp, final)
}

// Has reports whether the server holds name with src's size and SHA-256
// (read back: SFTP has no standard hash command).
func (c *Client) Has(ctx context.Context, name string, src deliver.File) (bool, error) {
	final, err := c.remote(name)
	if err != nil {
		return false, err
	}
	cn, err := c.get(ctx)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { c.drop(cn) })
	defer stop()
	fi, err := cn.sftp.Stat(final)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, c.fail(ctx, cn, "stat "+final, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != src.Size {
		return false, nil
	}
	rf, err := cn.sftp.Open(final)
	if err != nil {
		return false, c.fail(ctx, cn, "open "+final, err)
	}
	defer rf.Close()
	h := sha256.New()
	if _, err := rf.WriteTo(h); err != nil {
		return false, c.fail(ctx, cn, "read "+final, err)
	}
	return strings.EqualFold(hex.EncodeToString(h.Sum(nil)), src.SHA256), nil
}

// Remove deletes name; a missing file is not an error.
func (c *Client) Remove(ctx context.Context, name string) error {
	final, err := c.remote(name)
	if err != nil {
		return err
	}
	cn, err := c.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.drop(cn) })
	defer stop()
	if err := cn.sftp.Remove(final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.fail(ctx, cn, "remove "+final, err)
	}
	return nil
}

// fail wraps err from an operation on cn and classifies it: the context's
// error when ctx ended; permanent for permission denied and missing
// paths; transient otherwise, dropping the connection when it is lost.
func (c *Client) fail(ctx context.Context, cn *conn, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("sftp %s: %s: %w", c.String(), op, ctx.Err())
	}
	wrapped := fmt.Errorf("sftp %s: %s: %w", c.String(), op, err)
	if connectionLost(err) || cn.dead() {
		c.drop(cn)
		return wrapped
	}
	var se *sftp.StatusError
	switch {
	case errors.Is(err, fs.ErrPermission), errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxPermissionDenied:
		return deliver.Permanent(wrapped)
	case errors.Is(err, fs.ErrNotExist), errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxNoSuchFile:
		return deliver.Permanent(wrapped)
	case errors.Is(err, syscall.ENOTDIR):
		return deliver.Permanent(wrapped)
	case errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported:
		return deliver.Permanent(wrapped)
	}
	return wrapped
}

// connectionLost reports whether err means the connection is gone (or
// unusable), as opposed to the server refusing one request.
func connectionLost(err error) bool {
	if errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
