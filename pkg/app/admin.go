package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The operator's socket. A running `mobius serve` on the embedded store
// holds bbolt's exclusive lock on the data file, so no other process can
// open it, not even read-only (bbolt's read-only open takes a shared lock,
// which waits for the exclusive one). What an operator needs of a running
// store, a consistent copy, is served by the server itself on a Unix
// socket in the data folder:
//
//	GET /v1/backup   the data file as one bbolt read transaction sees it
//	                 (Tx.WriteTo), with trailers Mobius-Backup-Bytes (how
//	                 many bytes were sent) and, if the copy failed midway,
//	                 Mobius-Backup-Error
//
// The socket is mode 0600 in the data folder (0700): whoever may connect
// to it may read the data file and the key file anyway. It is not on the
// API's listener, which may face a network.

// adminSocketName is the socket's name in the data folder.
const adminSocketName = "admin.sock"

// maxSocketPath is the longest socket path every Unix accepts (sun_path
// holds 104 bytes on the BSDs and macOS, 108 on Linux, with the NUL).
const maxSocketPath = 103

// Trailers of GET /v1/backup.
const (
	trailerBackupBytes = "Mobius-Backup-Bytes"
	trailerBackupError = "Mobius-Backup-Error"
)

// ServeAdmin serves the operator's socket of the embedded store until ctx
// ends or stop (or Close) is called, which closes it and removes the
// socket file. It
// returns once the socket accepts connections. A socket file left by a
// server that died is replaced: the data file's lock, which this App
// holds, says no other server runs on this folder. On DynamoDB there is no
// socket, and stop does nothing.
func (a *App) ServeAdmin(ctx context.Context) (stop func(), err error) {
	if a.store == nil {
		return func() {}, nil
	}
	path := filepath.Join(a.cfg.DataDir, adminSocketName)
	tmp := filepath.Join(a.cfg.DataDir, "."+adminSocketName+"-"+randomSuffix())
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("no operator socket: its path %s is longer than the %d bytes a Unix socket may have; online backups (mobius admin backup) need a shorter data folder path, or a stopped server", path, maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("no operator socket: %s exists and is not a socket; move it away", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("no operator socket: removing the stale %s: %w", path, err)
		}
	}
	// Bound under a private name, made 0600, then renamed into place: the
	// socket is never reachable with the umask's mode.
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("no operator socket: %w", err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("no operator socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("no operator socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/backup", a.serveBackup)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go srv.Serve(ln)
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			srv.Close()
			os.Remove(path)
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			srv.Close()
		case <-done:
		}
	}()
	// Closing the App closes the socket first: a closed store never
	// answers as a running server.
	a.closers = append(a.closers, func() error { stop(); return nil })
	return stop, nil
}

// serveBackup streams a consistent copy of the data file.
func (a *App) serveBackup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", trailerBackupBytes+", "+trailerBackupError)
	began := time.Now()
	n, err := a.store.Backup(w)
	w.Header().Set(trailerBackupBytes, strconv.FormatInt(n, 10))
	if err != nil {
		w.Header().Set(trailerBackupError, oneLine(err.Error()))
		a.log.ErrorContext(r.Context(), "backup failed", "bytes", n, "err", err.Error())
		return
	}
	a.log.InfoContext(r.Context(), "backup sent", "bytes", n, "duration_ms", time.Since(began).Milliseconds())
}

// errNoServer is fetchBackup's answer when no server answers on the
// data folder's socket.
var errNoServer = errors.New("no server answers on the operator socket")

// dialAdmin connects to the operator socket of dataDir; errNoServer when
// nothing listens there (no socket file, or one a dead server left).
func dialAdmin(ctx context.Context, dataDir string) (net.Conn, error) {
	path := filepath.Join(dataDir, adminSocketName)
	if len(path) > maxSocketPath {
		return nil, errNoServer
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, errNoServer
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the server's operator socket %s: %w", path, err)
	}
	return c, nil
}

// serverRunning reports whether a server answers on dataDir's socket.
func serverRunning(ctx context.Context, dataDir string) bool {
	c, err := dialAdmin(ctx, dataDir)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// fetchBackup copies the data file of the server running on dataDir to w
// through its operator socket, and returns the bytes copied; errNoServer
// when no server runs there.
func fetchBackup(ctx context.Context, dataDir string, w io.Writer) (int64, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialAdmin(ctx, dataDir)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://mobius-admin/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if errors.Is(err, errNoServer) {
		return 0, errNoServer
	}
	if err != nil {
		return 0, fmt.Errorf("asking the running server for a backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("the running server refused the backup: %s: %s", resp.Status, oneLine(string(body)))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("the backup from the running server broke off after %d bytes: %w", n, err)
	}
	if msg := resp.Trailer.Get(trailerBackupError); msg != "" {
		return n, fmt.Errorf("the running server failed to copy its store after %d bytes: %s", n, msg)
	}
	if sent := resp.Trailer.Get(trailerBackupBytes); sent != strconv.FormatInt(n, 10) {
		return n, fmt.Errorf("the backup from the running server is incomplete: %d bytes received, the server reports %q sent", n, sent)
	}
	return n, nil
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// oneLine replaces line breaks by spaces.
func oneLine(s string) string {
	out := []rune(s)
	for i, r := range out {
		if r == '\n' || r == '\r' {
			out[i] = ' '
		}
	}
	return string(out)
}
