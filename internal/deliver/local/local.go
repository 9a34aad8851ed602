// Package local delivers files to a folder on this machine.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/exporter-dev/exporter/internal/deliver"
)

// Client delivers into Dir.
type Client struct {
	Dir string
}

var _ deliver.Destination = (*Client)(nil)

// New returns a client for dir, creating it if needed and checking that it
// is writable.
func New(dir string) (*Client, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".exporter-probe-*")
	if err != nil {
		return nil, fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return &Client{Dir: dir}, nil
}

func (c *Client) String() string { return c.Dir }

// Put links or copies the file to a temporary name in Dir, syncs it and
// renames it into place.
func (c *Client) Put(ctx context.Context, name string, src deliver.File) error {
	path := src.Path
	if err := ctx.Err(); err != nil {
		return err
	}
	final := filepath.Join(c.Dir, name)
	tmp := filepath.Join(c.Dir, "."+name+".part")
	_ = os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		if err := copyFile(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", name, err)
	}
	return syncDir(c.Dir)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

var _ deliver.Remover = (*Client)(nil)

// Remove deletes name from Dir; a missing file is not an error.
func (c *Client) Remove(ctx context.Context, name string) error {
	err := os.Remove(filepath.Join(c.Dir, name))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

var _ deliver.Checker = (*Client)(nil)

// Has reports whether Dir holds name with src's size and SHA-256.
func (c *Client) Has(ctx context.Context, name string, src deliver.File) (bool, error) {
	f, err := os.Open(filepath.Join(c.Dir, name))
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != src.Size {
		return false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == src.SHA256, nil
}
